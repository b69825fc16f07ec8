"""Reading text files in blocks of whole records, for the CSV and JSON lines sources.

A :class:`TextFile` opens a file for byte-level reading: it checks the file is there, streams it
through gzip when compressed, and turns encodings that are not ASCII-compatible (UTF-16, UTF-32)
into a temporary UTF-8 copy so that newlines, quotes and delimiters are plain bytes everywhere.
A :class:`BlockReader` then reads that byte stream in blocks that end on a record boundary, as
decided by a cutter: :class:`NewlineCutter` for JSON lines, :class:`RecordCutter` for CSV.

Offsets in checkpoints are offsets in that byte stream: the file itself, its decompressed content,
or the UTF-8 copy (which is rebuilt identically when a run resumes).
"""

from __future__ import annotations

import codecs
import gzip
import os
import re
import tempfile
import weakref
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO

from portl.errors import SourceError

UTF8_BOM = b"\xef\xbb\xbf"
SAMPLE_BYTES = 1 << 20
_COPY_BYTES = 1 << 20
_EXACT_AFTER = 32 << 20
"""A block that grows past this without a boundary by quote parity is cut by the exact scanner."""


def check_encoding(name: str) -> str:
    """Validate an encoding name for a config model."""
    try:
        codecs.lookup(name)
    except LookupError:
        raise ValueError(f"unknown encoding {name!r}; e.g. utf-8, latin-1, cp1252, utf-16") from None
    return name


def is_ascii_compatible(encoding: str) -> bool:
    """Whether newline, quote, comma and tab are single bytes with their ASCII values."""
    sample = '\n\r,;|"\t abc'
    try:
        return sample.encode(encoding) == sample.encode("ascii")
    except (UnicodeError, LookupError):
        return False


class TextFile:
    """A text file read as bytes in an ASCII-compatible encoding, plain or gzip-compressed.

    ``name`` is the path as the user wrote it, used in messages. Construction fails with a
    :class:`SourceError` when the file is missing, a directory, or unreadable.

    ``remote`` reads an object of a store instead (a
    :class:`~portl.connectors.objectstore.RemoteObject`, found already): streams come from ranged
    GETs, and scans from a seekable view of the object.
    """

    def __init__(self, path: str, name: str, encoding: str, compression: str, remote: Any = None):
        self.path = path
        self.name = name
        self.encoding = encoding
        self.remote = remote
        if remote is None:
            if not os.path.exists(path):
                raise SourceError(f"source file not found: {path}")
            if os.path.isdir(path):
                raise SourceError(f"source {path} is a directory, not a file")
            try:
                with open(path, "rb") as probe:
                    probe.read(1)
            except OSError as exc:
                raise SourceError(f"cannot read source file {path}: {exc.strerror or exc}") from exc
        self.compressed = compression == "gzip" or (compression == "auto" and path.lower().endswith(".gz"))
        codec = codecs.lookup(encoding).name
        self.utf8 = codec in ("utf-8", "utf-8-sig")
        self._readable_path = path
        self._temp: str | None = None
        if not is_ascii_compatible(encoding):
            self._transcode()

    # -- opening -------------------------------------------------------------------------------

    @property
    def seekable(self) -> bool:
        """Byte ranges can be read independently (needed for partitions)."""
        return not self.compressed

    @property
    def size(self) -> int | None:
        """Bytes of the readable stream when known without reading it."""
        if self.reads_remote:
            return None if self.compressed else self.remote.size
        if self.compressed:
            return _gzip_size_hint(self._readable_path)
        return os.path.getsize(self._readable_path)

    @property
    def reads_remote(self) -> bool:
        """Bytes come from the object itself (not from a local UTF-8 copy of it)."""
        return self.remote is not None and self._temp is None

    def open_raw(self) -> BinaryIO:
        """The readable bytes as a seekable file, for scans of a plain (uncompressed) stream."""
        if self.reads_remote:
            return self.remote.random_access()
        return open(self._readable_path, "rb")

    @property
    def raw_size(self) -> int:
        """Bytes of the plain readable stream (see :meth:`open_raw`)."""
        return self.remote.size if self.reads_remote else os.path.getsize(self._readable_path)

    @property
    def readable_path(self) -> str:
        """The plain file read: the file itself, or its UTF-8 copy."""
        return self._readable_path

    def open_at(self, offset: int) -> BinaryIO:
        """The readable byte stream, positioned at ``offset``."""
        stream: BinaryIO
        if self.reads_remote:
            if not self.compressed:
                return self.remote.open_at(offset)
            stream = gzip.GzipFile(fileobj=self.remote.open_at(0), mode="rb")  # type: ignore[assignment]
        elif self.compressed:
            stream = gzip.open(self._readable_path, "rb")  # type: ignore[assignment]
        else:
            stream = open(self._readable_path, "rb")
        if offset:
            try:
                stream.seek(offset)  # gzip: reads and discards up to the offset
            except (OSError, EOFError, zlib.error) as exc:
                error = self._read_error(exc, stream)
                stream.close()
                raise error from exc
        return stream

    def read_from(self, stream: BinaryIO) -> Callable[[int], bytes]:
        """A ``read(n)`` for ``stream`` whose failures (a corrupt gzip file) are source errors."""

        def read(size: int) -> bytes:
            try:
                return stream.read(size)
            except (OSError, EOFError, zlib.error) as exc:
                raise self._read_error(exc, stream) from exc

        return read

    def bom_length(self, head: bytes) -> int:
        """Bytes of a UTF-8 byte order mark at the start of ``head``, skipped before the header."""
        return len(UTF8_BOM) if self.utf8 and head.startswith(UTF8_BOM) else 0

    def close(self) -> None:
        if self._temp is not None:
            _remove(self._temp)
            self._temp = None

    def _read_error(self, exc: BaseException, stream: BinaryIO | None = None) -> SourceError:
        kind = "gzip file" if self.compressed else "file"
        where = self._damage_place(stream) if self.compressed and stream is not None else ""
        return SourceError(f"cannot read {kind} {self.name}{where}: {exc}")

    def _damage_place(self, stream: BinaryIO) -> str:
        """Where a gzip stream broke: the compressed offset reached (to within the decompressor's
        read-ahead, 128 KiB) and the bytes of data it gave before; empty when they cannot be told."""
        try:
            compressed = stream.fileobj.tell()  # type: ignore[attr-defined]
            data = stream.tell()
            total = self.remote.size if self.remote is not None else os.path.getsize(self.path)
        except (AttributeError, OSError, ValueError):
            return ""
        return f" at compressed byte {compressed:,} of {total:,} (after {data:,} bytes of data)"

    # -- encodings -----------------------------------------------------------------------------

    def to_utf8(self, block: bytes, first_line: int) -> bytes:
        """``block`` as UTF-8 bytes; UTF-8 input is returned as is (Arrow validates it)."""
        if self.utf8 or block.isascii():
            return block
        try:
            return block.decode(self.encoding).encode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.encoding_error(block, first_line, exc) from None

    def decode(self, block: bytes, first_line: int) -> str:
        """``block`` as text, or a :class:`SourceError` naming the line of the first bad byte."""
        encoding = "utf-8" if self.utf8 else self.encoding
        try:
            return block.decode(encoding)
        except UnicodeDecodeError as exc:
            raise self.encoding_error(block, first_line, exc) from None

    def text(self, raw: bytes) -> str:
        """Raw bytes of a record as text, for messages (undecodable bytes replaced)."""
        return raw.decode("utf-8" if self.utf8 else self.encoding, errors="replace")

    def locate_invalid_utf8(self, block: bytes, first_line: int) -> SourceError | None:
        """The error for the first invalid UTF-8 byte of ``block``, or None when it is valid."""
        try:
            block.decode("utf-8")
        except UnicodeDecodeError as exc:
            return self.encoding_error(block, first_line, exc)
        return None

    def encoding_error(self, block: bytes, first_line: int, exc: UnicodeDecodeError) -> SourceError:
        line = first_line + block.count(b"\n", 0, exc.start)
        bad = block[exc.start : exc.start + 1].hex()
        declared = self.encoding
        hint = "latin-1" if self.utf8 else "utf-8"
        return SourceError(
            f"{self.name} line {line}: not valid {declared} (byte 0x{bad}); "
            f"set `encoding:` on the source, e.g. {hint}"
        )

    def _transcode(self) -> None:
        """Copy a UTF-16/UTF-32 file to a temporary UTF-8 file, in bounded memory."""
        decoder = codecs.getincrementaldecoder(self.encoding)(errors="strict")
        handle, temp = tempfile.mkstemp(prefix="portl-", suffix=".utf8")
        self._temp = temp
        weakref.finalize(self, _remove, temp)
        line, first = 1, True
        if self.remote is not None:
            raw = self.remote.open_at(0)
            opened: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if self.compressed else raw  # type: ignore[assignment]
        else:
            opened = gzip.open(self.path, "rb") if self.compressed else open(self.path, "rb")  # type: ignore[assignment]
        with opened as source, os.fdopen(handle, "wb") as out:
            read = self.read_from(source)
            while True:
                raw = read(_COPY_BYTES)
                try:
                    text = decoder.decode(raw, final=not raw)
                except UnicodeDecodeError as exc:
                    done = exc.object[: exc.start].decode(self.encoding, errors="replace")
                    bad = exc.object[exc.start : exc.start + 2].hex()
                    raise SourceError(
                        f"{self.name} line {line + done.count(chr(10))}: not valid {self.encoding} "
                        f"(bytes 0x{bad}); set `encoding:` on the source, e.g. utf-8"
                    ) from None
                if first and text:
                    text = text.removeprefix("\ufeff")
                    first = False
                line += text.count("\n")
                out.write(text.encode("utf-8"))
                if not raw:
                    break
        self._readable_path = temp
        self.compressed = False
        self.utf8 = True


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _gzip_size_hint(path: str) -> int | None:
    """The uncompressed size from the gzip trailer (exact for single-member files under 4 GiB)."""
    try:
        size = os.path.getsize(path)
        if size < 18 or size >= 1 << 32:
            return None
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            return int.from_bytes(f.read(4), "little")
    except OSError:
        return None


# -- record boundaries ---------------------------------------------------------------------------


class NewlineCutter:
    """Every newline ends a record (JSON lines: a JSON string cannot hold a raw newline)."""

    def last_boundary(self, buf: bytes) -> int:
        return buf.rfind(b"\n") + 1 or -1

    def record_ends(self, buf: bytes) -> list[int]:
        ends, pos = [], buf.find(b"\n")
        while pos >= 0:
            ends.append(pos + 1)
            pos = buf.find(b"\n", pos + 1)
        return ends

    def after_records(self, buf: bytes, count: int, newlines: int) -> int:
        """Position just after the ``count``-th record of ``buf`` (which holds ``newlines``) when
        more follows, else -1."""
        return _after_newlines(buf, count, newlines)


def _after_newlines(buf: bytes, count: int, total: int) -> int:
    """Position just after the ``count``-th of the ``total`` newlines of ``buf`` when bytes follow
    it, else -1. Walks from whichever end is nearer: a block is cut by a few rows (a large batch)
    or holds only a few (a small one), so this takes few steps either way."""
    if total < count:
        return -1
    if count <= total - count:
        pos = -1
        for _ in range(count):
            pos = buf.find(b"\n", pos + 1)
    else:  # the count-th newline is the (total - count + 1)-th from the end
        pos = len(buf)
        for _ in range(total - count + 1):
            pos = buf.rfind(b"\n", 0, pos)
    return pos + 1 if pos + 1 < len(buf) else -1


NEWLINE, PARITY, EXACT = "newline", "parity", "exact"


class RecordCutter:
    """Finds where CSV records end inside a block that starts at a record start.

    It cuts blocks in one of three modes, each slower and surer than the one before:

    - ``newline``: the last newline. Right unless a quoted field spanning lines straddles it;
      the CSV source checks every cut against what Arrow parsed and upgrades when one was wrong.
    - ``parity``: the last newline preceded by an even number of quote characters (``bytes.count``
      and ``rfind``, in C). Exact when every quote opens, closes or doubles inside a quoted field.
    - ``exact``: a regular expression for a whole record that follows Arrow's rules (a quote is
      only special at the start of a field, so ``5" screen`` is literal text; ``escape_char``
      escapes the next character). Used once parity was caught wrong, or once a cut was found
      wrong in a file with an escape character. Several times slower than Arrow's parse.
    """

    def __init__(self, delimiter: str, quote: str | None, escape: str | None, mode: str = NEWLINE):
        self.delimiter = delimiter.encode()
        self.quote = quote.encode() if quote else b""
        self.escape = escape.encode() if escape else b""
        self.trivial = not self.quote and not self.escape  # every newline ends a record
        self.mode = mode
        self._record = _record_pattern(self.delimiter, self.quote, self.escape)

    def upgrade(self) -> None:
        """Move to the next surer mode, after a cut was found inside a quoted field."""
        # Quote parity is no help with an escape character: escaped quotes would count.
        self.mode = PARITY if self.mode == NEWLINE and not self.escape else EXACT

    def last_boundary(self, buf: bytes) -> int:
        """Position just after the last record-ending newline in ``buf``, or -1."""
        if self.trivial or self.mode == NEWLINE:
            return buf.rfind(b"\n") + 1 or -1
        if self.mode == EXACT:
            ends = self._scan(buf)
            return ends[-1] if ends else -1
        pos = buf.rfind(b"\n")
        quotes_after, total = 0, buf.count(self.quote)
        previous = len(buf)
        while pos >= 0:
            quotes_after += buf.count(self.quote, pos, previous)
            if (total - quotes_after) % 2 == 0:
                return pos + 1
            previous = pos
            pos = buf.rfind(b"\n", 0, pos)
        if len(buf) > _EXACT_AFTER:
            # Quote parity found no boundary in a huge block: a stray quote is far likelier than
            # one record this long. The exact scanner settles it either way.
            self.mode = EXACT
            return self.last_boundary(buf)
        return -1

    def after_records(self, buf: bytes, count: int, newlines: int) -> int:
        """Position just after the ``count``-th record of ``buf`` (which holds ``newlines``) when
        more follows, else -1: by newlines in newline mode (a wrong cut is caught as any other),
        else by records."""
        if self.trivial or self.mode == NEWLINE:
            return _after_newlines(buf, count, newlines)
        if newlines < count:
            return -1
        ends = self.record_ends(buf)
        return ends[count - 1] if len(ends) >= count and ends[count - 1] < len(buf) else -1

    def first_end(self, buf: bytes) -> int:
        """Position just after the newline ending the first record of ``buf``, or -1."""
        if self.trivial:
            return buf.find(b"\n") + 1 or -1
        found = self._record.match(buf)
        return found.end() if found else -1

    def record_ends(self, buf: bytes, exact: bool = False) -> list[int]:
        """Positions just after every record-ending newline in ``buf``: by quote parity unless
        ``exact`` (or the cutter is in exact mode)."""
        if self.trivial:
            return NewlineCutter().record_ends(buf)
        if exact or self.mode == EXACT or self.escape:
            return self._scan(buf)
        ends, odd, previous = [], False, 0
        pos = buf.find(b"\n")
        while pos >= 0:
            odd ^= buf.count(self.quote, previous, pos) % 2 == 1
            if not odd:
                ends.append(pos + 1)
            previous = pos
            pos = buf.find(b"\n", pos + 1)
        return ends

    def _scan(self, buf: bytes) -> list[int]:
        ends: list[int] = []
        match, pos, size = self._record.match, 0, len(buf)
        while pos < size:
            found = match(buf, pos)
            if found is None:
                break  # an incomplete record at the end of the buffer
            pos = found.end()
            ends.append(pos)
        return ends


def _record_pattern(delimiter: bytes, quote: bytes, escape: bytes) -> re.Pattern[bytes]:
    """One complete CSV record, newline included, by Arrow's rules.

    A quote is special only at the start of a field; inside quotes a doubled quote is a literal
    quote; text after a closing quote runs on as unquoted text; the escape character (if any)
    makes the next character literal, quoted or not, a newline included. Possessive quantifiers
    keep a failed match (an incomplete last record) from backtracking.
    """
    d, q, e = re.escape(delimiter), re.escape(quote), re.escape(escape)
    escaped = [e + b"."] if escape else []

    def run(excluded: bytes, *others: bytes) -> bytes:  # runs of plain bytes, or single escapes
        return b"(?:" + b"|".join([b"[^" + excluded + b"]++", *escaped, *others]) + b")*+"

    text = run(d + b"\n" + e)
    if quote:
        first = b"(?:" + b"|".join([b"[^" + d + b"\n" + e + q + b"]", *escaped]) + b")"
        field = b"(?:" + q + run(q + e, q + q) + q + text + b"|" + first + text + b"|)"
    else:
        field = text
    return re.compile(field + b"(?:" + d + field + b")*+\n", re.DOTALL)


def record_text(raw: bytes) -> bytes:
    """A record without its line ending."""
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw


class BlockReader:
    """Reads a byte stream in blocks that end on a record boundary.

    ``offset`` is the stream offset of the next block; ``end`` (exclusive) stops a partition
    early. A record longer than the requested size makes the block grow until it fits.
    """

    def __init__(self, read: Callable[[int], bytes], offset: int, end: int | None, cutter):
        self._read = read
        self.offset = offset
        self.end = end
        self.cutter = cutter
        self._carry = b""
        self._eof = end is not None and offset >= end

    def next_block(self, size: int, records: int) -> tuple[bytes, bool, int] | None:
        """The next block of about ``size`` bytes, whether it is the last one and the newlines it
        holds; or None at the end. The block holds at most ``records`` records (``batch.size`` as
        written, even when a small batch's bytes would hold more)."""
        got = self._next_block(size)
        if got is None:
            return None
        block, final = got
        newlines = block.count(b"\n")
        cut = self.cutter.after_records(block, records, newlines) if newlines >= records else -1
        if cut <= 0:
            return block, final, newlines
        self.unread(block[cut:])
        return block[:cut], False, newlines - block.count(b"\n", cut)  # the tail is the shorter part to count

    def _next_block(self, size: int) -> tuple[bytes, bool] | None:
        buf, want = self._carry, max(size, 1)
        while True:
            if not self._eof and len(buf) < want:
                ask = want - len(buf)
                if self.end is not None:
                    ask = min(ask, self.end - self.offset - len(buf))
                data = self._read(ask) if ask > 0 else b""
                if len(data) < ask or ask <= 0 or (
                    self.end is not None and self.offset + len(buf) + len(data) >= self.end
                ):
                    self._eof = True
                buf += data
            if self._eof:
                self._carry = b""
                if not buf:
                    return None
                self.offset += len(buf)
                return buf, True
            cut = self.cutter.last_boundary(buf)
            if cut > 0:
                self._carry = buf[cut:]
                self.offset += cut
                return buf[:cut], False
            want = max(want, len(buf)) * 2

    def unread(self, block: bytes) -> None:
        """Put the block just returned back, to be cut again (after the cutter changed mode)."""
        self._carry = block + self._carry
        self.offset -= len(block)


# -- partitions ----------------------------------------------------------------------------------


def range_starts(
    file: TextFile, data_start: int, count: int, accept: Callable[[bytes], bool]
) -> list[int]:
    """Start offsets of up to ``count`` byte ranges of a plain (uncompressed) text file, each at a
    line start.

    Range ``k`` starts after the first newline at or after its nominal offset whose following
    line ``accept`` takes for a record (up to 1000 candidates; else the range merges with the
    previous one).
    """
    size = file.raw_size
    span = size - data_start
    starts = [data_start]
    with file.open_raw() as f:
        for k in range(1, count):
            nominal = data_start + span * k // count
            found = _line_start_after(f, max(nominal - 1, starts[-1]), size, accept)
            if found is not None and found > starts[-1] and found < size:
                starts.append(found)
    return starts


def _line_start_after(f: BinaryIO, pos: int, size: int, accept: Callable[[bytes], bool]) -> int | None:
    """Offset of the first line start after ``pos`` whose line ``accept`` takes, or None."""
    f.seek(pos)
    buf, base = b"", pos  # buf holds the file's bytes from offset base
    for _ in range(1000):
        newline = buf.find(b"\n")
        while newline < 0:
            more = f.read(1 << 16)
            if not more:
                return None
            buf, base = more, base + len(buf)
            newline = buf.find(b"\n")
        start = base + newline + 1
        if start >= size:
            return None
        buf, base = buf[newline + 1 :], start
        line_end = buf.find(b"\n")
        while line_end < 0:
            more = f.read(1 << 16)
            if not more:
                line_end = len(buf)
                break
            buf += more
            line_end = buf.find(b"\n")
        if accept(buf[:line_end]):
            return start
    return None


def count_newlines(file: TextFile, start: int, ends: list[int]) -> list[int]:
    """Newlines between ``start`` and each offset of the ascending list ``ends``, in one pass."""
    if file.remote is not None and file.reads_remote:
        return file.remote.newlines_before(start, ends)
    counts: list[int] = []
    total, pos = 0, start
    with file.open_raw() as f:
        f.seek(start)
        for end in ends:
            while pos < end:
                chunk = f.read(min(8 << 20, end - pos))
                if not chunk:
                    break
                total += chunk.count(b"\n")
                pos += len(chunk)
            counts.append(total)
    return counts
