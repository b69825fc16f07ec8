"""Reading one S3 object as the file sources read a file: a stream from an offset (the first
MiBs fetched once, the rest by one GET received ahead of the parser), and a seekable view
(ranged GETs with a read-ahead buffer) for scans and Parquet footers."""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable
from typing import Any

from portl.connectors.objectstore.paths import Found, split_url


class RemoteObject:
    """One object, as :class:`~portl.connectors.blocks.TextFile` reads it: streams from an offset,
    and a seekable file for scanning (partition starts, Parquet footers)."""

    _HEAD_BYTES = 4 << 20
    _COUNT_BYTES = 8 << 20

    def __init__(self, store: Any, found: Found):
        self.store, self.name, self.size, self.version = store, found.name, found.size, found.version
        self._head: bytes | None = None
        self._lock = threading.Lock()

    def open_at(self, offset: int) -> Any:
        """A stream of the object from ``offset`` to its end. The first few MiB are fetched once
        and kept (the header scan, and the plan's look at the first rows, read only those);
        past them, one GET streams the rest as it is read."""
        if offset >= self.size:
            return io.BytesIO(b"")
        head = self.head_bytes()
        if offset < len(head):
            rest = None if len(head) >= self.size else (lambda: self._stream(len(head)))
            return _Chained(head[offset:], rest)
        return self._stream(offset)

    def newlines_before(self, start: int, ends: list[int]) -> list[int]:
        """Newlines between ``start`` and each offset of the ascending ``ends``: the object's
        ranges fetched by several GETs at once (one connection to S3 gives far less than its
        bandwidth), each counted as it arrives."""
        from concurrent.futures import ThreadPoolExecutor

        cuts = sorted({start, *ends, *range(start, ends[-1] if ends else start, self._COUNT_BYTES)})
        spans = list(zip(cuts, cuts[1:]))
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="portl-s3-count") as pool:
            counts = list(pool.map(lambda span: self.store.get_range(self.name, *span).count(b"\n"), spans))
        upto, total = {start: 0}, 0
        for (_, end), count in zip(spans, counts):
            total += count
            upto[end] = total
        return [upto[end] for end in ends]

    def head_bytes(self) -> bytes:
        with self._lock:
            if self._head is None:
                self._head = self.store.get_range(self.name, 0, min(self.size, self._HEAD_BYTES))
            return self._head

    def _stream(self, offset: int) -> _ReadAhead:
        return _ReadAhead(self.store, self.store.get_range(self.name, offset, None, stream=True), self.name)

    def random_access(self) -> ObjectFile:
        return ObjectFile(self)


class _Chained(io.RawIOBase):
    """Bytes already fetched, then a stream opened only if the reader goes past them."""

    def __init__(self, first: bytes, rest: Callable[[], Any] | None):
        self._first, self._at, self._open_rest = first, 0, rest
        self._rest: Any = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        want = None if size is None or size < 0 else size
        piece = self._first[self._at :] if want is None else self._first[self._at : self._at + want]
        self._at += len(piece)
        if (want is not None and len(piece) >= want) or self._open_rest is None:
            return piece
        if self._rest is None:
            self._rest = self._open_rest()
        more = self._rest.read(-1 if want is None else want - len(piece))
        return piece + more if piece else more

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._rest is not None:
            self._rest.close()
        super().close()


class _ReadAhead(io.RawIOBase):
    """A GET's body as a readable binary stream (``gzip`` and ``with`` take it), received on a
    thread of its own a few MiB ahead of the reader: the network and the store's answer overlap
    the parsing of the blocks already there. Memory: at most ``_DEPTH`` chunks of ``_CHUNK``."""

    _CHUNK = 4 << 20
    _DEPTH = 4

    def __init__(self, store: Any, body: Any, name: str):
        self._store, self._body, self._name = store, body, name
        self._queue: queue.Queue = queue.Queue(maxsize=self._DEPTH)
        self._stop = threading.Event()
        self._buf, self._at, self._eof = b"", 0, False
        self._thread = threading.Thread(target=self._receive, name="portl-s3-read", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._body.read(self._CHUNK)
                self._put(data)
                if not data:
                    return
        except BaseException as exc:  # handed to the reader, which raises it
            self._put(exc)

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        want = None if size is None or size < 0 else size
        pieces, have = [], 0
        while want is None or have < want:
            if self._at >= len(self._buf):
                if self._eof:
                    break
                item = self._queue.get()
                if isinstance(item, BaseException):
                    self._eof = True
                    raise self._store.error(item, *split_url(self._name), "read", source=True) from item
                if not item:
                    self._eof = True
                    break
                self._buf, self._at = item, 0
            take = len(self._buf) - self._at if want is None else min(want - have, len(self._buf) - self._at)
            pieces.append(self._buf[self._at : self._at + take] if take < len(self._buf) or self._at else self._buf)
            self._at += take
            have += take
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stop.set()
            try:
                self._body.close()
            except Exception:  # closing a half-read body drops its connection; nothing to report
                pass
        super().close()


class ObjectFile(io.RawIOBase):
    """A seekable, read-only view of an object: each read is a ranged GET of at least 1 MiB,
    kept as a read-ahead buffer, so a scan of small reads costs few requests."""

    _AHEAD = 1 << 20

    def __init__(self, remote: RemoteObject):
        self._remote, self._pos = remote, 0
        self._buf, self._buf_at = b"", 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._remote.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def size(self) -> int:
        return self._remote.size

    def read(self, size: int = -1) -> bytes:
        total = self._remote.size
        end = total if size is None or size < 0 else min(total, self._pos + size)
        if end <= self._pos:
            return b""
        in_buf = self._buf_at <= self._pos and end <= self._buf_at + len(self._buf)
        if not in_buf:
            fetch_end = min(total, max(end, self._pos + self._AHEAD))
            self._buf = self._remote.store.get_range(self._remote.name, self._pos, fetch_end)
            self._buf_at = self._pos
        data = self._buf[self._pos - self._buf_at : end - self._buf_at]
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
