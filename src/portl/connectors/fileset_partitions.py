"""How a glob of files is cut into partitions for a parallel load.

Each file is its own partition, so that ``parallel.workers`` threads take files from one queue.
A file that stands out is cut into byte ranges by its own source (``CsvSource.partitions``: range
starts on record boundaries), when that source can cut it (a compressed file, or a CSV file with
quoted fields spanning lines, stays whole). Ranges are about ``max(threshold, average file)``
bytes, the threshold being :func:`split_bytes` (256 MiB unless ``PORTL_SPLIT_BYTES`` says
otherwise); a file is cut when it is above the threshold and holds two such ranges or more (at
least one and a half times their size). Files of about equal size are not cut: each is a
partition already, and cutting costs a pass over the file to count its lines.

Partitions come largest first: with more partitions than workers, the long ones start at once and
the short ones fill the gaps at the end, instead of one large file starting last and running alone.
A partition is named after its file's index in the sorted listing (``"3"``), and a range after the
file and the range (``"3.1"``): the names do not depend on the number of workers, so a run resumed
with other ``workers`` (or cut again from the destination's checkpoints) finds its partitions again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from portl.connectors.base import Checkpoint
from portl.errors import ConfigError, ResumeError

SPLIT_BYTES = 256 << 20
SPLIT_VARIABLE = "PORTL_SPLIT_BYTES"


def split_bytes(environ: Mapping[str, str] | None = None) -> int:
    """Files larger than this are cut into byte ranges (when also twice the average file):
    ``PORTL_SPLIT_BYTES``, else 256 MiB."""
    raw = (os.environ if environ is None else environ).get(SPLIT_VARIABLE, "").strip()
    if not raw:
        return SPLIT_BYTES
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{SPLIT_VARIABLE}={raw!r} is not a number of bytes: set it to a whole number "
                          f"from 1 up, e.g. {SPLIT_BYTES} (256 MiB, the default)")
    return value


@dataclass(frozen=True)
class FilePart:
    """One partition of a set of files: file ``file`` whole, or its byte range ``inner`` (the
    file's own partition, as its source cut it). ``size`` orders the parts."""

    name: str
    file: int
    size: int
    inner: Checkpoint | None = None


def cut_files(sizes: list[int], ranges: Callable[[int, int], list[Checkpoint]], threshold: int) -> list[FilePart]:
    """The parts of files of ``sizes`` bytes, largest first. ``ranges(index, count)`` asks the
    source of a large file for up to ``count`` partitions of it; one back means it stays whole."""
    if not sizes:
        return []
    average = sum(sizes) / len(sizes)
    piece = max(threshold, average)
    parts: list[FilePart] = []
    for index, size in enumerate(sizes):
        count = round(size / piece)
        inner = ranges(index, count) if size > threshold and count >= 2 else []
        if len(inner) > 1:
            parts += [FilePart(f"{index}.{k}", index, _range_bytes(cp, size, len(inner)), cp) for k, cp in enumerate(inner)]
        else:
            parts.append(FilePart(str(index), index, size))
    parts.sort(key=lambda p: -p.size)  # a stable sort: parts of equal size stay in file order
    return parts


def _range_bytes(inner: Checkpoint, size: int, count: int) -> int:
    """Bytes of a byte range (``offset`` up to ``end``, the file's end when None); a partition
    of another kind (a Parquet row group) counts as an equal share of its file."""
    offset, end = inner.position.get("offset"), inner.position.get("end")
    if isinstance(offset, int):
        return (end if isinstance(end, int) else size) - offset
    return size // count


def check_disjoint(starts: list[Checkpoint], names: list[str]) -> None:
    """Refuse partitions that would read the same rows twice: two unfinished partitions standing
    in one file, unless both are byte ranges of it that do not meet. That happens only when a run
    is continued from the destination's checkpoints alone and its partitions are cut again
    differently (``PORTL_SPLIT_BYTES`` set otherwise, or a run of whole-file groups started by an
    earlier version of Portl)."""
    spans: dict[int, list[tuple[float, float, str]]] = {}
    for start in starts:
        if start.done:
            continue
        first, end = int(start.position["file"]), int(start.position["end_file"])
        for index in range(first, end):
            at = start.position.get("at") if index == first else None
            if at is None:  # the file from its start
                low, high = 0.0, float("inf")
            elif isinstance(at.get("position", {}).get("offset"), int):  # a byte range of it, or what is left of one
                low, high = at["position"]["offset"], at["position"].get("end") or float("inf")
            else:  # a part that is not a byte range (a row group): cannot be told, left to its source
                continue
            for other_low, other_high, other in spans.get(index, []):
                if low < other_high and other_low < high:
                    name = names[index] if index < len(names) else f"file {index + 1}"
                    raise ResumeError(
                        f"partitions {other} and {start.partition} of the run being resumed would both read {name}: "
                        "the files were cut into partitions otherwise than when the run started "
                        "(PORTL_SPLIT_BYTES set otherwise, or a run started by an earlier version). Nothing more was "
                        "loaded; continue with the same PORTL_SPLIT_BYTES, or run the job again without --resume")
            spans.setdefault(index, []).append((low, high, start.partition))
