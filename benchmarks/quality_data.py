"""The quality benchmark's data: a large TSV of orders over three years of business days, with
a few business days left out and a few days of about four times the usual volume.

    python benchmarks/quality_data.py --gb 0.5     # write (or reuse) the file and print its plan

``day`` holds business days only: weekdays that are not US federal holidays (the ``holidays``
package's calendar, observed days included: the one ``date_completeness`` uses with
``holidays: {country: US}``), from 2022-01-03 to 2024-12-31, in order, as an append-only log would
have them. Each day's volume is the same base times a factor drawn between 0.95 and 1.05 (so that
the spread the anomaly check measures is not zero); ``missing`` days get no row and ``spikes``
days four times the base. The planted days are drawn from the seed, away from both ends of the
range (a missing first or last day would only move the range) and apart from each other.

The file is written in blocks of 1M rows, each from its own ``numpy`` generator seeded with
(seed, block number), with ``pyarrow.csv.write_csv`` (tab-delimited, never quoted: no value holds
a tab, a quote or a line break). It is written once into ``benchmarks/.data/`` with a ``.json``
beside it holding the plan (rows, planted days, bytes), and reused while that still matches.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c  # noqa: E402

VERSION = 1
SEED = 20261208
ROWS_PER_GB = 8_300_000  # about 120 bytes a row: 10 GB is about 83M rows
BLOCK = 1_000_000
FIRST_DAY, LAST_DAY = dt.date(2022, 1, 3), dt.date(2024, 12, 31)
MISSING, SPIKES, SPIKE_FACTOR = 5, 4, 4.0
COLUMNS = ["id", "day", "customer", "email", "amount", "qty", "status", "country", "price", "note"]

_FIRST = ("James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan "
          "Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Betty Anthony Margaret Mark Sandra Paul "
          "Emily Andrew Donna Joshua Michelle Kevin Amanda Brian Melissa Ronald Laura").split()
_LAST = ("Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez "
         "Wilson Anderson Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis "
         "Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson").split()
_DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "example.co.uk", "shop.example.io"]
_STATUS = (["new", "paid", "shipped", "delivered", "returned", "cancelled"], [0.1, 0.2, 0.25, 0.35, 0.05, 0.05])
_COUNTRIES = ["US", "CA", "GB", "DE", "FR", "MX", "BR", "JP", "AU", "IN"]
_WORDS = ("order shipped late customer asked refund invoice paid twice address changed phone support ticket "
          "closed priority follow up next week account upgraded discount applied delivery missed call back "
          "package damaged replacement sent renewal due contract signed trial ended card expired").split()


@dataclass(frozen=True)
class Data:
    """The generated file and what was planted in it."""

    path: Path
    rows: int
    bytes: int
    seed: int
    business_days: list[str]
    missing: list[str]
    spikes: list[str]
    per_day: dict[str, int]

    @property
    def gigabytes(self) -> float:
        return self.bytes / 1e9


def business_days(first: dt.date = FIRST_DAY, last: dt.date = LAST_DAY) -> list[dt.date]:
    """Weekdays between ``first`` and ``last`` that are not US federal holidays."""
    import holidays

    off = holidays.country_holidays("US", years=list(range(first.year, last.year + 1)))
    days, day = [], first
    while day <= last:
        if day.weekday() < 5 and day not in off:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def plan(rows: int, seed: int) -> tuple[list[dt.date], list[dt.date], list[dt.date], np.ndarray]:
    """The business days, the missing and spike days drawn from ``seed``, and the rows per business day."""
    days = business_days()
    rng = np.random.default_rng([seed, 1])
    # Candidates away from both ends, then drawn so that no two planted days are next to each other.
    candidates = list(range(10, len(days) - 10))
    chosen: list[int] = []
    while len(chosen) < MISSING + SPIKES:
        at = int(rng.choice(candidates))
        if all(abs(at - other) > 2 for other in chosen):
            chosen.append(at)
    missing, spikes = sorted(chosen[:MISSING]), sorted(chosen[MISSING:])
    weight = rng.uniform(0.95, 1.05, len(days))
    weight[spikes] = SPIKE_FACTOR
    weight[missing] = 0.0
    counts = np.floor(rows * weight / weight.sum()).astype(np.int64)
    short = rows - int(counts.sum())
    present = np.flatnonzero(counts)
    counts[present[:short]] += 1  # the rounding's remainder, one row each to the first days
    return days, [days[i] for i in missing], [days[i] for i in spikes], counts


def _vocabulary(seed: int) -> dict[str, pa.Array]:
    rng = np.random.default_rng([seed, 2])
    first, last = np.array(_FIRST), np.array(_LAST)
    names = [f"{f} {l}" for f in first for l in last]
    emails = [f"{f.lower()}.{l.lower()}" for f in first for l in last]
    short = [" ".join(rng.choice(_WORDS, rng.integers(2, 5))) for _ in range(4000)]
    long = [" ".join(rng.choice(_WORDS, rng.integers(6, 14))) for _ in range(1000)]
    return {"names": pa.array(names), "emails": pa.array(emails), "domains": pa.array(_DOMAINS),
            "status": pa.array(_STATUS[0]), "countries": pa.array(_COUNTRIES), "notes": pa.array(short + long)}


def _block(seed: int, number: int, first_row: int, rows: int, day_of_row: np.ndarray, vocab: dict[str, pa.Array]) -> pa.Table:
    rng = np.random.default_rng([seed, 3, number])
    person = rng.integers(0, len(vocab["names"]), rows)
    suffix = pc.cast(pa.array(rng.integers(1, 1000, rows)), pa.string())
    domain = vocab["domains"].take(pa.array(rng.integers(0, len(_DOMAINS), rows)))
    email = pc.binary_join_element_wise(pc.binary_join_element_wise(vocab["emails"].take(pa.array(person)), suffix, ""),
                                        domain, "@")
    cents = rng.integers(0, 5_000_000, rows)
    amount = pc.binary_join_element_wise(pc.cast(pa.array(cents // 100), pa.string()),
                                         pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, "0"), ".")
    # Notes: mostly a few words, a fifth longer, one in twenty-five empty (read as NULL on both sides).
    kind = rng.random(rows)
    note_at = np.where(kind < 0.8, rng.integers(0, 4000, rows), rng.integers(4000, 5000, rows))
    note = vocab["notes"].take(pa.array(note_at, mask=kind > 0.96))
    return pa.table({
        "id": pa.array(np.arange(first_row + 1, first_row + rows + 1, dtype=np.int64)),
        "day": pa.array(day_of_row, pa.date32()),
        "customer": vocab["names"].take(pa.array(person)),
        "email": email,
        "amount": amount,
        "qty": pa.array(rng.integers(1, 1001, rows)),
        "status": vocab["status"].take(pa.array(rng.choice(len(_STATUS[0]), rows, p=_STATUS[1]))),
        "country": vocab["countries"].take(pa.array(rng.integers(0, len(_COUNTRIES), rows))),
        "price": pa.array(np.round(rng.lognormal(3.0, 1.0, rows), 2)),
        "note": note,
    })


def dataset(gb: float, seed: int = SEED, quiet: bool = False) -> Data:
    """The TSV file of about ``gb`` GB for ``seed``: reused when its description matches, else written."""
    rows = max(int(round(gb * ROWS_PER_GB)), 100_000)
    c.DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = c.DATA_DIR / f"quality-{rows}-seed-{seed}-v{VERSION}.tsv"
    meta_path = path.with_suffix(".json")
    days, missing, spikes, counts = plan(rows, seed)
    wanted = {"rows": rows, "seed": seed, "generator": VERSION, "columns": COLUMNS,
              "missing": [d.isoformat() for d in missing], "spikes": [d.isoformat() for d in spikes]}
    meta = c.cached(path, wanted)
    if meta is not None:
        if not quiet:
            print(f"data: reusing {c._rel(path)} ({rows:,} rows, {path.stat().st_size / 1e9:,.2f} GB)")
        return _data(path, meta, days, counts)
    need = rows * 125 * 2.6  # the file, the table beside it, and the unique check's spilled keys
    free = shutil.disk_usage(c.DATA_DIR).free
    if free < need:
        raise SystemExit(f"not enough free disk space in {c.DATA_DIR}: {free / 1e9:.1f} GB free, about "
                         f"{need / 1e9:.1f} GB needed for {rows:,} rows (the file, a table, spilled keys)")
    if not quiet:
        print(f"data: generating {c._rel(path)} ({rows:,} rows, seed {seed}) ...", flush=True)
    started = time.perf_counter()
    vocab = _vocabulary(seed)
    ordinals = np.array([d.toordinal() - dt.date(1970, 1, 1).toordinal() for d in days], dtype=np.int32)
    ends = np.cumsum(counts)
    tmp = path.with_suffix(".tsv.partial")
    with open(tmp, "wb") as out:
        for number, first in enumerate(range(0, rows, BLOCK)):
            n = min(BLOCK, rows - first)
            # Rows are in day order: row r falls on the first day whose running total passes r.
            day_of_row = ordinals[np.searchsorted(ends, np.arange(first, first + n), side="right")]
            table = _block(seed, number, first, n, day_of_row, vocab)
            pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=number == 0, delimiter="\t",
                                                           quoting_style="none", quoting_header="none",
                                                           batch_size=64 * 1024))
    os.replace(tmp, path)
    size = path.stat().st_size
    meta = {**wanted, "bytes": size, "first_day": days[0].isoformat(), "last_day": days[-1].isoformat(),
            "business_days": len(days), "spike_factor": SPIKE_FACTOR}
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    if not quiet:
        print(f"data: wrote {size / 1e9:,.2f} GB ({size / rows:.0f} bytes/row) in {time.perf_counter() - started:.1f} s",
              flush=True)
    return _data(path, meta, days, counts)


def _data(path: Path, meta: dict, days: list[dt.date], counts: np.ndarray) -> Data:
    return Data(path, meta["rows"], meta["bytes"], meta["seed"], [d.isoformat() for d in days], list(meta["missing"]),
                list(meta["spikes"]), {d.isoformat(): int(n) for d, n in zip(days, counts) if n})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=10.0, help="size of the file in GB (default 10: about 80M rows)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    data = dataset(args.gb, args.seed)
    normal = [n for d, n in data.per_day.items() if d not in data.spikes]
    print(f"{data.path}: {data.rows:,} rows, {data.gigabytes:.2f} GB, {len(data.business_days)} business days "
          f"({data.business_days[0]} to {data.business_days[-1]}), {min(normal):,}–{max(normal):,} rows on a usual day")
    print(f"planted missing days: {', '.join(data.missing)}")
    print(f"planted spike days ({SPIKE_FACTOR:g}x): {', '.join(data.spikes)}")


if __name__ == "__main__":
    main()
