"""The S3 client of the file connectors: finding objects (one, or every match of a key glob),
reading ranges, writing small objects, the calls of a multipart upload, and every failure
translated, once, into a Portl error that names the bucket and key and says what to do.

boto3 is imported when the first client is made, never before."""

from __future__ import annotations

import os
import threading
from typing import Any

from portl.connectors.objectstore.paths import (
    GLOB_CHARS, OWN_SUFFIXES, SCHEME, STORE_KEYS, Found, has_glob, key_pattern, split_url,
)
from portl.connectors.objectstore.streams import RemoteObject
from portl.errors import ConfigError, PortlError, SourceError, TerminalError, TransientError


class S3Store:
    """An S3 client for one set of connector options, with the calls the file connectors make and
    every failure translated into an error that names the bucket and key."""

    def __init__(self, options: tuple[Any, ...]):
        self._options = dict(zip(STORE_KEYS, options))
        self._client: Any = None
        self._lock = threading.Lock()

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
        bucket, key = split_url(url)
        if not has_glob(key):
            return [self.head(url)]
        first = min(key.find(c) for c in GLOB_CHARS if c in key)
        prefix, match = key[:first], key_pattern(key).match
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
        return found

    def head(self, url: str, missing_ok: bool = False) -> Found | None:
        """What the store says of one object now; a missing one is an error unless ``missing_ok``."""
        bucket, key = split_url(url)
        try:
            meta = self.client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                if self._bucket_exists(bucket, key, source=not missing_ok) and missing_ok:
                    return None
            elif _code(exc) in ("403", "400"):
                self._bucket_exists(bucket, key, source=not missing_ok)  # a HEAD answer has no body: ask again
            raise self.error(exc, bucket, key, "read", source=not missing_ok) from exc
        return Found(url, int(meta["ContentLength"]), meta.get("ETag", "").strip('"'))

    def _bucket_exists(self, bucket: str, key: str, source: bool) -> bool:
        """True when the bucket is there; else raises the error a listing gives, which (unlike a
        HEAD answer) says what is wrong: no such bucket, bad keys, access denied."""
        try:
            self.client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        except Exception as exc:
            raise self.error(exc, bucket, key, "read" if source else "write", source=source) from exc
        return True

    def remote(self, url: str, found: Found | None = None) -> RemoteObject:
        """The object to read: as ``found`` says (a glob source's own listing), else as a HEAD says now."""
        return RemoteObject(self, found or self.head(url))  # type: ignore[arg-type]

    # -- reading and writing whole objects -----------------------------------------------------

    def get_range(self, url: str, start: int, end: int | None = None, stream: bool = False) -> Any:
        """Bytes ``start``..``end`` (exclusive; None: to the end) of an object: its body as a
        stream, or the bytes."""
        bucket, key = split_url(url)
        ranged = {} if start == 0 and end is None else {"Range": f"bytes={start}-{'' if end is None else end - 1}"}
        try:
            body = self.client.get_object(Bucket=bucket, Key=key, **ranged)["Body"]
            return body if stream else body.read()
        except Exception as exc:
            raise self.error(exc, bucket, key, "read", source=True) from exc

    def get_text(self, url: str) -> str | None:
        """A small object (a checkpoint sidecar) as text, or None when there is none."""
        bucket, key = split_url(url)
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        except Exception as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self.error(exc, bucket, key, "read") from exc

    def put(self, url: str, data: bytes) -> None:
        bucket, key = split_url(url)
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=data)
        except Exception as exc:
            raise self.error(exc, bucket, key, "write") from exc

    def delete(self, url: str) -> None:
        bucket, key = split_url(url)
        try:
            self.client.delete_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if _code(exc) not in ("404", "NoSuchKey", "NotFound"):
                raise self.error(exc, bucket, key, "delete") from exc

    def call(self, action: str, url: str, operation: str, **kwargs: Any) -> Any:
        """One client call on the object ``url`` (a multipart upload step), its failure translated."""
        bucket, key = split_url(url)
        try:
            return getattr(self.client, operation)(Bucket=bucket, Key=key, **kwargs)
        except Exception as exc:
            raise self.error(exc, bucket, key, action) from exc

    def keys_after(self, url: str) -> list[str]:
        """The URLs of every object whose key begins with the key of ``url`` (a writer's own
        leftovers next to its object)."""
        bucket, prefix = split_url(url)
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            return [f"{SCHEME}{bucket}/{item['Key']}" for page in pages for item in page.get("Contents", [])]
        except Exception as exc:
            raise self.error(exc, bucket, prefix, "list the objects of") from exc

    def uploads(self, url: str) -> list[str]:
        """Ids of the unfinished multipart uploads of exactly this object."""
        bucket, key = split_url(url)
        try:
            listed = self.client.list_multipart_uploads(Bucket=bucket, Prefix=key)
        except Exception as exc:
            raise self.error(exc, bucket, key, "list the uploads of") from exc
        return [u["UploadId"] for u in listed.get("Uploads", []) if u["Key"] == key]

    # -- errors --------------------------------------------------------------------------------

    @staticmethod
    def error(exc: BaseException, bucket: str, key: str, action: str, source: bool = False) -> Exception:
        """``exc`` from boto3 as a Portl error that says what failed, where, and what to do."""
        if isinstance(exc, PortlError):  # said already (the client could not be made)
            return exc
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
    options = tuple(getattr(config, key) for key in STORE_KEYS)
    key = (*[o.get_secret_value() if hasattr(o, "get_secret_value") else o for o in options],
           os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_PROFILE"))
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = S3Store(options)
        return store
