"""Where a file connector's ``path`` leads: a local file, or an object in S3 (or a store that
speaks its API), found one by one or by a glob.

This is the one seam between the file connectors (CSV, TSV, JSON lines, Parquet) and object
stores. A connector asks :func:`text_file` / :func:`parquet_input` for what it reads, and
:func:`find_files` for the files a glob names; a local path without a glob never reaches boto3
or any code here beyond a prefix test, so local loads cost what they always did.

Credentials come from boto3's default chain (the ``AWS_*`` environment variables, including
``AWS_ENDPOINT_URL``, shared config and credentials files, profiles, instance roles) unless the
job names a ``profile`` or gives keys. boto3 is imported only when an ``s3://`` path is used.
S3 failures are translated here, once, into Portl errors that name the bucket and key.
"""

from __future__ import annotations

import glob as globlib
import io
import os
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import Field, model_validator

from portl.connectors.blocks import TextFile
from portl.connectors.config import ConnectorConfig, Incremental, KeyRule, resolve_path
from portl.connectors.filesink import SIDECAR_SUFFIX, TMP_SUFFIX
from portl.errors import ConfigError, SourceError, TerminalError, TransientError
from portl.secrets import Secret

SCHEME = "s3://"
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]+)://")
TAIL_SUFFIX = ".portl-tail"
OWN_SUFFIXES = (SIDECAR_SUFFIX, TAIL_SUFFIX, TMP_SUFFIX)
"""What Portl keeps beside a file or object it writes; a glob never reads those."""
GLOB_CHARS = frozenset("*?[")
_STORE_KEYS = ("endpoint_url", "region", "profile", "aws_access_key_id", "aws_secret_access_key", "aws_session_token")


def is_object_url(path: str) -> bool:
    """Whether ``path`` names an object in a store (``s3://bucket/key``) rather than a local file."""
    return path[:5].lower() == SCHEME


def has_glob(path: str) -> bool:
    """Whether ``path`` is a pattern (``*``, ``?``, ``[...]``) naming possibly many files."""
    return any(char in GLOB_CHARS for char in path)


class FileConfig(ConnectorConfig):
    """A file connector's settings: a ``path`` (local, or ``s3://bucket/key``, either maybe a glob)
    and how to reach an object store. Every store option is optional: by default boto3 finds
    the endpoint, region and credentials as the AWS tools do."""

    endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, R2...); default: AWS_ENDPOINT_URL or AWS.")
    region: str | None = Field(None, description="Region of the bucket; default: AWS_REGION / the profile's region.")
    profile: str | None = Field(None, description="Named profile of the AWS config and credentials files.")
    aws_access_key_id: str | None = Field(None, description="Access key id, when not taken from the environment or a profile.")
    aws_secret_access_key: Secret | None = Field(None, description="Secret access key; never printed.")
    aws_session_token: Secret | None = Field(None, description="Session token of temporary credentials; never printed.")
    incremental: Incremental | None = Field(
        None, description="Sources whose path is a glob: read only the files that are new or changed since the job's "
        "last finished run (incremental: {}).")

    @model_validator(mode="after")
    def _store_options_need_an_object_path(self) -> FileConfig:
        given = [key for key in _STORE_KEYS if getattr(self, key) is not None]
        path = getattr(self, "path", "")
        if given and not is_object_url(path):
            raise ValueError(f"{', '.join(given)} only apply to s3:// paths, and path is {path!r}")
        problem = _incremental_problem(self.incremental, path)
        if problem is not None:
            raise KeyRule("incremental", problem)
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError("give aws_access_key_id and aws_secret_access_key together")
        if is_object_url(path) and not all(_split(path)):
            raise ValueError(f"{path!r} names no bucket or no key; write s3://bucket/key")
        scheme = _SCHEME.match(path)
        if scheme and not is_object_url(path):
            raise ValueError(f"{scheme.group(1)}:// paths are not supported; a path is a local file or s3://bucket/key "
                             "(S3-compatible stores too, with endpoint_url)")
        return self


def _incremental_problem(incremental: Incremental | None, path: str) -> str | None:
    """Why ``incremental`` cannot apply to a file source with this path, or None."""
    if incremental is None:
        return None
    if not has_glob(path):
        return (f"incremental on a file source reads the new files of a glob, and {path!r} is one file; write a "
                "glob (data/*.csv, s3://bucket/prefix/*.csv), or remove incremental")
    given = [key for key in ("cursor", "lookback", "initial") if getattr(incremental, key) is not None]
    if given:
        return (f"a file glob reads only the files that are new or changed; it takes no {', '.join(given)}: "
                "write incremental: {}")
    return None


# --- what a path finds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """One file a path or glob found: ``name`` is how messages and checkpoints call it (the path
    as the user would write it, or ``s3://bucket/key``); ``version`` tells a changed file from
    the one loaded before (the object's ETag, or a local file's modification time)."""

    name: str
    size: int
    version: str

    def mark(self) -> dict[str, Any]:
        return {"size": self.size, "version": self.version}


def find_files(config: Any, base_dir: str) -> list[Found]:
    """The files ``config.path`` names, sorted by name: one, or every match of a glob. A glob that
    matches nothing, or a path that is not there, is a :class:`SourceError` naming it."""
    path = config.path
    if is_object_url(path):
        return store_for(config).find(path)
    pattern = resolve_path(path, base_dir)
    matches = sorted(p for p in globlib.glob(pattern, recursive=True) if os.path.isfile(p) and not p.endswith(OWN_SUFFIXES))
    if not matches:
        raise SourceError(f"no file matches {path} (looked for {pattern})")
    found = []
    for match in matches:
        stat = os.stat(match)
        name = match if os.path.isabs(os.path.expanduser(path)) else os.path.relpath(match, base_dir)
        found.append(Found(name, stat.st_size, str(stat.st_mtime_ns)))
    return found


def text_file(config: Any, base_dir: str) -> TextFile:
    """The text file a CSV or JSON lines source reads: a local file (as it always was), or an
    object read with streaming ranged GETs."""
    if not is_object_url(config.path):
        return TextFile(resolve_path(config.path, base_dir), config.path, config.encoding, config.compression)
    store = store_for(config)
    return TextFile(config.path, config.path, config.encoding, config.compression, remote=store.remote(config.path))


def parquet_input(config: Any, base_dir: str) -> tuple[Any, int]:
    """What ``pyarrow.parquet.ParquetFile`` opens for a Parquet source, and its size: a local path,
    or a callable giving a seekable reader of the object (one per reader: partitions read in threads)."""
    if not is_object_url(config.path):
        path = resolve_path(config.path, base_dir)
        if not os.path.exists(path):
            raise SourceError(f"source file not found: {path}")
        if os.path.isdir(path):
            raise SourceError(f"source {path} is a directory, not a file")
        return path, os.path.getsize(path)
    remote = store_for(config).remote(config.path)
    return remote.random_access, remote.size


# --- S3 ------------------------------------------------------------------------------------------


def _split(url: str) -> tuple[str, str]:
    rest = url[len(SCHEME):]
    bucket, _, key = rest.partition("/")
    return bucket, key


def _pattern(key_glob: str) -> re.Pattern[str]:
    """A key glob as a regular expression: ``*`` and ``?`` stay within one ``/`` level, ``**``
    crosses levels (``a/**/b.csv`` matches ``a/b.csv`` too), ``[...]`` is a set (``[!...]`` its
    complement)."""
    out, i = [], 0
    while i < len(key_glob):
        char = key_glob[i]
        if key_glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if key_glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = key_glob.find("]", i + 2)
            if end < 0:
                out.append(re.escape(char))
            else:
                body = key_glob[i + 1 : end]
                body = "^" + body[1:] if body.startswith("!") else body
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


class S3Store:
    """An S3 client for one set of connector options, with the calls the file connectors make and
    every failure translated into an error that names the bucket and key."""

    def __init__(self, options: tuple[Any, ...]):
        self._options = dict(zip(_STORE_KEYS, options))
        self._client: Any = None
        self._lock = threading.Lock()
        self._known: dict[str, Found] = {}

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Any:
        try:
            import boto3
            from botocore.config import Config as BotoConfig
        except ImportError as exc:
            raise TerminalError("s3:// paths need boto3: pip install 'portl[aws]'") from exc
        opts = self._options
        secret, token = opts["aws_secret_access_key"], opts["aws_session_token"]
        try:
            session = boto3.Session(
                profile_name=opts["profile"],
                aws_access_key_id=opts["aws_access_key_id"],
                aws_secret_access_key=secret.get_secret_value() if secret is not None else None,
                aws_session_token=token.get_secret_value() if token is not None else None,
                region_name=opts["region"],
            )
            return session.client("s3", endpoint_url=opts["endpoint_url"],
                                  config=BotoConfig(max_pool_connections=32, retries={"max_attempts": 5, "mode": "standard"}))
        except Exception as exc:  # an unknown profile, an unreadable config file, a bad endpoint
            raise ConfigError(f"cannot set up the S3 client: {exc}") from exc

    # -- finding objects -----------------------------------------------------------------------

    def find(self, url: str) -> list[Found]:
        """The object ``url`` names, or every object its key glob matches, sorted by key."""
        bucket, key = _split(url)
        if not has_glob(key):
            return [self.head(url)]
        first = min(key.find(c) for c in GLOB_CHARS if c in key)
        prefix, match = key[:first], _pattern(key).match
        found = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    if match(item["Key"]) and not item["Key"].endswith(("/", *OWN_SUFFIXES)):
                        found.append(Found(f"{SCHEME}{bucket}/{item['Key']}", int(item["Size"]), item["ETag"].strip('"')))
        except Exception as exc:
            raise self.error(exc, bucket, prefix, "list the objects of", source=True) from exc
        if not found:
            raise SourceError(f"no object matches {url} (bucket {bucket!r}, prefix {prefix!r})")
        found.sort(key=lambda f: f.name)
        with self._lock:
            self._known.update((f.name, f) for f in found)
        return found

    def head(self, url: str, missing_ok: bool = False) -> Found | None:
        """What the store says of one object; a missing one is an error unless ``missing_ok``."""
        with self._lock:
            known = self._known.get(url)
        if known is not None:
            return known
        bucket, key = _split(url)
        try:
            meta = self.client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                if self._bucket_exists(bucket, key) and missing_ok:
                    return None
            elif _code(exc) in ("403", "400"):
                self._bucket_exists(bucket, key)  # a HEAD answer has no body: ask again for the reason
            raise self.error(exc, bucket, key, "read", source=not missing_ok) from exc
        return Found(url, int(meta["ContentLength"]), meta.get("ETag", "").strip('"'))

    def _bucket_exists(self, bucket: str, key: str) -> bool:
        """True when the bucket is there; else raises the error a listing gives, which (unlike a
        HEAD answer) says what is wrong: no such bucket, bad keys, access denied."""
        try:
            self.client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        except Exception as exc:
            raise self.error(exc, bucket, key, "read", source=True) from exc
        return True

    def remote(self, url: str) -> RemoteObject:
        return RemoteObject(self, self.head(url))  # type: ignore[arg-type]

    # -- reading and writing whole objects -----------------------------------------------------

    def get_range(self, url: str, start: int, end: int | None = None, stream: bool = False) -> Any:
        """Bytes ``start``..``end`` (exclusive; None: to the end) of an object: its body as a
        stream, or the bytes."""
        bucket, key = _split(url)
        ranged = {} if start == 0 and end is None else {"Range": f"bytes={start}-{'' if end is None else end - 1}"}
        try:
            body = self.client.get_object(Bucket=bucket, Key=key, **ranged)["Body"]
            return body if stream else body.read()
        except Exception as exc:
            raise self.error(exc, bucket, key, "read", source=True) from exc

    def get_text(self, url: str) -> str | None:
        """A small object (a checkpoint sidecar) as text, or None when there is none."""
        bucket, key = _split(url)
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        except Exception as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self.error(exc, bucket, key, "read") from exc

    def put(self, url: str, data: bytes) -> None:
        bucket, key = _split(url)
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=data)
        except Exception as exc:
            raise self.error(exc, bucket, key, "write") from exc

    def delete(self, url: str) -> None:
        bucket, key = _split(url)
        try:
            self.client.delete_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if _code(exc) not in ("404", "NoSuchKey", "NotFound"):
                raise self.error(exc, bucket, key, "delete") from exc

    def call(self, action: str, url: str, operation: str, **kwargs: Any) -> Any:
        """One client call on the object ``url`` (a multipart upload step), its failure translated."""
        bucket, key = _split(url)
        try:
            return getattr(self.client, operation)(Bucket=bucket, Key=key, **kwargs)
        except Exception as exc:
            raise self.error(exc, bucket, key, action) from exc

    def uploads(self, url: str) -> list[str]:
        """Ids of the unfinished multipart uploads of exactly this object."""
        bucket, key = _split(url)
        try:
            listed = self.client.list_multipart_uploads(Bucket=bucket, Prefix=key)
        except Exception as exc:
            raise self.error(exc, bucket, key, "list the uploads of") from exc
        return [u["UploadId"] for u in listed.get("Uploads", []) if u["Key"] == key]

    # -- errors --------------------------------------------------------------------------------

    @staticmethod
    def error(exc: BaseException, bucket: str, key: str, action: str, source: bool = False) -> Exception:
        """``exc`` from boto3 as a Portl error that says what failed, where, and what to do."""
        code, where = _code(exc), f"{SCHEME}{bucket}/{key}"
        terminal = SourceError if source else TerminalError
        kind = type(exc).__name__
        if kind == "NoCredentialsError" or kind == "PartialCredentialsError":
            return ConfigError(f"no AWS credentials found to {action} {where}: set AWS_ACCESS_KEY_ID and "
                               "AWS_SECRET_ACCESS_KEY, a profile (AWS_PROFILE or profile:), or the key options")
        if kind == "ProfileNotFound":
            return ConfigError(f"cannot {action} {where}: {exc}")
        if code == "NoSuchBucket":
            return terminal(f"cannot {action} {where}: bucket {bucket!r} does not exist")
        if code in ("404", "NoSuchKey", "NotFound"):
            return terminal(f"cannot {action} {where}: no such object (bucket {bucket!r}, key {key!r})")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
            return terminal(f"cannot {action} {where}: S3 refused the credentials ({code}); check the access key, "
                            "secret and session token, or the profile in use")
        if code in ("403", "AccessDenied", "AllAccessDisabled"):
            return terminal(f"cannot {action} {where}: access denied; the credentials in use may not {action} "
                            f"objects of bucket {bucket!r}")
        if code in ("NoSuchUpload",):
            return terminal(f"cannot {action} {where}: its multipart upload no longer exists")
        if code in ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "500", "503") or kind in (
            "EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError", "ConnectTimeoutError",
            "ResponseStreamingError", "IncompleteReadError", "ProtocolError",
        ):
            return TransientError(f"cannot {action} {where} for now: {exc}")
        if code:
            return terminal(f"cannot {action} {where}: {exc}")
        return terminal(f"cannot {action} {where}: {kind}: {exc}")


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


_STORES: dict[tuple[Any, ...], S3Store] = {}
_STORES_LOCK = threading.Lock()


def store_for(config: Any) -> S3Store:
    """The client for a config's store options, shared by every file of a glob and every partition
    (a client takes tens of milliseconds to build, and is safe to share between threads). Clients
    made from the environment are kept apart per endpoint, so a changed ``AWS_ENDPOINT_URL`` is seen."""
    options = tuple(getattr(config, key) for key in _STORE_KEYS)
    key = (*[o.get_secret_value() if hasattr(o, "get_secret_value") else o for o in options],
           os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_PROFILE"))
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = S3Store(options)
        return store


class RemoteObject:
    """One object, as :class:`~portl.connectors.blocks.TextFile` reads it: streams from an offset,
    and a seekable file for scanning (partition starts, Parquet footers)."""

    _HEAD_BYTES = 4 << 20

    def __init__(self, store: S3Store, found: Found):
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

    def head_bytes(self) -> bytes:
        with self._lock:
            if self._head is None:
                self._head = self.store.get_range(self.name, 0, min(self.size, self._HEAD_BYTES))
            return self._head

    def _stream(self, offset: int) -> _ReadAhead:
        return _ReadAhead(self.store.get_range(self.name, offset, None, stream=True), self.name)

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

    def __init__(self, body: Any, name: str):
        self._body, self._name = body, name
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
                    bucket, _, key = self._name[len(SCHEME):].partition("/")
                    raise S3Store.error(item, bucket, key, "read", source=True) from item
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
