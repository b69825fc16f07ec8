"""64-bit hashes of Arrow columns, computed with numpy over the columns' buffers (no Python loop).

Distinct estimates (:class:`DistinctSketch`) and the exact uniqueness check's buckets
(:mod:`portl.quality.uniqueness`) need a hash per value. Numbers, dates and times hash their
bit pattern through the splitmix64 finaliser. Text and bytes hash as a polynomial over their
bytes: with ``W[j] = P**j`` (mod 2**64) the sum of ``byte[j] * W[j]`` over a value's bytes,
taken from a running sum and brought back to the value's own start by multiplying with the
inverse of ``P**start`` (``P`` is odd, so it has one modulo 2**64), then mixed with its length.
Every operation is a numpy pass over the column's data, whatever the number of values.
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_P = 0x100000001B3  # odd: invertible modulo 2**64
_P_INV = pow(_P, -1, 1 << 64)
_NULL = np.uint64(0x9E3779B97F4A7C15)
_COMBINE = np.uint64(0xBF58476D1CE4E5B9)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit reaches every output bit."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(30))
        h = h * np.uint64(0xBF58476D1CE4E5B9)
        h = h ^ (h >> np.uint64(27))
        h = h * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


class _Powers:
    """``P**j`` and ``P**-j`` modulo 2**64 for j below a length that grows as needed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.up = np.ones(1, np.uint64)
        self.down = np.ones(1, np.uint64)

    def upto(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        up, down = self.up, self.down
        if len(up) >= n:
            return up, down
        size = max(n, 2 * len(up), 1 << 16)
        with np.errstate(over="ignore"):
            factors = np.full(size, _P, np.uint64)
            factors[0] = 1
            new_up = np.cumprod(factors, dtype=np.uint64)
            factors.fill(_P_INV)
            factors[0] = 1
            new_down = np.cumprod(factors, dtype=np.uint64)
        with self._lock:
            if len(self.up) < size:
                self.up, self.down = new_up, new_down
            return self.up, self.down


_POWERS = _Powers()


def hash_array(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """One uint64 per value of ``array``; equal values hash equal, NULLs hash to one constant."""
    if isinstance(array, pa.ChunkedArray):
        if array.num_chunks == 0:
            return np.zeros(0, np.uint64)
        return np.concatenate([hash_array(c) for c in array.chunks])
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.cast(kind.value_type)
        kind = array.type
    if pa.types.is_string(kind) or pa.types.is_binary(kind) or pa.types.is_large_string(kind) \
            or pa.types.is_large_binary(kind):
        hashed = _hash_bytes(array)
    elif hasattr(pa.types, "is_string_view") and (pa.types.is_string_view(kind) or pa.types.is_binary_view(kind)):
        return hash_array(array.cast(pa.large_binary() if pa.types.is_binary_view(kind) else pa.large_string()))
    elif pa.types.is_boolean(kind):
        hashed = _mix(pc.fill_null(array, False).cast(pa.uint8()).to_numpy(zero_copy_only=False).astype(np.uint64) + np.uint64(1))
    elif pa.types.is_floating(kind):
        values = pc.fill_null(array.cast(pa.float64()), 0.0).to_numpy(zero_copy_only=False)
        values = np.where(values == 0.0, 0.0, values)  # -0.0 equals 0.0
        hashed = _mix(values.view(np.uint64))
    elif pa.types.is_decimal(kind) or pa.types.is_fixed_size_binary(kind):
        hashed = _hash_fixed(array)
    elif pa.types.is_integer(kind) or pa.types.is_temporal(kind):
        width = kind.bit_width
        ints = array.view(pa.int64() if width == 64 else pa.int32() if width == 32 else pa.int16() if width == 16
                          else pa.int8())
        hashed = _mix(pc.fill_null(ints, 0).to_numpy(zero_copy_only=False).astype(np.int64).view(np.uint64))
    else:  # nested types: their text form (rare in checks; correct, not fast)
        return hash_array(pa.array([None if v is None else repr(v) for v in array.to_pylist()], pa.large_string()))
    if array.null_count:
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        hashed = np.where(valid, hashed, _NULL)
    return hashed


def hash_columns(columns: list[pa.Array | pa.ChunkedArray]) -> np.ndarray:
    """One uint64 per row over several columns (a composite key)."""
    out = hash_array(columns[0])
    with np.errstate(over="ignore"):
        for column in columns[1:]:
            out = _mix(out * _COMBINE + hash_array(column))
    return out


def _hash_bytes(array: pa.Array) -> np.ndarray:
    n = len(array)
    if n == 0:
        return np.zeros(0, np.uint64)
    large = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    _, offsets_buf, data_buf = array.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64 if large else np.int32)[array.offset:array.offset + n + 1].astype(np.int64)
    base, stop = int(offsets[0]), int(offsets[-1])
    starts = offsets[:-1] - base
    ends = offsets[1:] - base
    length = stop - base
    if length == 0 or data_buf is None:
        return _mix(np.zeros(n, np.uint64))
    data = np.frombuffer(data_buf, np.uint8, count=length, offset=base).astype(np.uint64)
    up, down = _POWERS.upto(length + 1)
    with np.errstate(over="ignore"):
        running = np.empty(length + 1, np.uint64)
        running[0] = 0
        np.cumsum(data * up[:length], dtype=np.uint64, out=running[1:])
        sums = (running[ends] - running[starts]) * down[starts]
        lengths = (ends - starts).astype(np.uint64)
        return _mix(sums + lengths * np.uint64(0x632BE59BD9B4E019))


def _hash_fixed(array: pa.Array) -> np.ndarray:
    """Fixed-width values (decimals, fixed-size binary) as rows of bytes, hashed 8 bytes at a time."""
    width = array.type.byte_width
    buf = array.buffers()[1]
    raw = np.frombuffer(buf, np.uint8, count=len(array) * width, offset=array.offset * width)
    padded_width = -(-width // 8) * 8
    if padded_width != width:
        rows = np.zeros((len(array), padded_width), np.uint8)
        rows[:, :width] = raw.reshape(len(array), width)
    else:
        rows = raw.reshape(len(array), width)
    words = np.ascontiguousarray(rows).view(np.uint64).reshape(len(array), padded_width // 8)
    out = _mix(words[:, 0].copy())
    with np.errstate(over="ignore"):
        for k in range(1, words.shape[1]):
            out = _mix(out * _COMBINE + words[:, k])
    return out


class DistinctSketch:
    """How many distinct values a column holds: exact up to ``k`` values, then a K-minimum-values
    estimate (the ``k`` smallest hashes seen; about 2% error for k = 2048)."""

    def __init__(self, k: int = 2048):
        self.k = k
        self.smallest = np.zeros(0, np.uint64)
        self._lock = threading.Lock()

    def add(self, hashes: np.ndarray) -> None:
        if not len(hashes):
            return
        with self._lock:
            if len(self.smallest) >= self.k:  # only hashes below the current k-th can matter
                hashes = hashes[hashes < self.smallest[-1]]
                if not len(hashes):
                    return
            merged = np.union1d(self.smallest, hashes)
            self.smallest = merged[: self.k]

    @property
    def full(self) -> bool:
        return len(self.smallest) >= self.k

    def merge(self, other: DistinctSketch) -> None:
        self.add(other.smallest)

    def estimate(self) -> int:
        if len(self.smallest) < self.k:
            return int(len(self.smallest))
        fraction = (float(self.smallest[-1]) + 1.0) / float(1 << 64)
        return int(round((self.k - 1) / fraction))
