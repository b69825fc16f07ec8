"""Where a file connector's ``path`` leads: a local file, or an object in S3 (or a store that
speaks its API), found one by one or by a glob.

This is the one seam between the file connectors (CSV, TSV, JSON lines, Parquet) and object
stores. A connector asks :func:`text_file` / :func:`parquet_input` for what it reads, and
:func:`find_files` for the files a glob names; a local path without a glob never reaches boto3
or any code here beyond a prefix test, so local loads cost what they always did.

Credentials come from boto3's default chain (the ``AWS_*`` environment variables, including
``AWS_ENDPOINT_URL``, shared config and credentials files, profiles, instance roles) unless the
job names a ``profile`` or gives keys. boto3 is imported only when an ``s3://`` path is used.

- :mod:`.paths`: what a path names (a URL, a glob), and what it finds (:class:`Found`);
- :mod:`.s3`: the client, and S3 failures translated, once, into errors naming bucket and key;
- :mod:`.streams`: an object read as a stream from an offset, or as a seekable file.
"""

from __future__ import annotations

import glob as globlib
import os
from typing import Any

from pydantic import Field, model_validator

from portl.connectors.blocks import TextFile
from portl.connectors.config import ConnectorConfig, Incremental, KeyRule, resolve_path
from portl.connectors.objectstore.paths import (
    OTHER_SCHEME, OWN_SUFFIXES, SCHEME, STORE_KEYS, TAIL_SUFFIX, Found, has_glob, is_object_url, split_url,
)
from portl.connectors.objectstore.s3 import S3Store, store_for
from portl.errors import SourceError
from portl.secrets import Secret

__all__ = ["FileConfig", "Found", "S3Store", "SCHEME", "TAIL_SUFFIX", "find_files", "has_glob", "is_glob_path", "is_object_url",
           "parquet_input", "store_for", "text_file"]


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
        given = [key for key in STORE_KEYS if getattr(self, key) is not None]
        path = getattr(self, "path", "")
        if given and not is_object_url(path):
            raise ValueError(f"{', '.join(given)} only apply to s3:// paths, and path is {path!r}")
        problem = _incremental_problem(self.incremental, path)
        if problem is not None:
            raise KeyRule("incremental", problem)
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError("give aws_access_key_id and aws_secret_access_key together")
        if is_object_url(path) and not all(split_url(path)):
            raise ValueError(f"{path!r} names no bucket or no key; write s3://bucket/key")
        scheme = OTHER_SCHEME.match(path)
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


def is_glob_path(config: Any, base_dir: str) -> bool:
    """Whether a source's path is a glob to expand: it has glob characters, and is not the name of
    a local file that exists as written (``data[1].csv``)."""
    path = config.path
    if not has_glob(path):
        return False
    return is_object_url(path) or not os.path.isfile(resolve_path(path, base_dir))


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


def text_file(config: Any, base_dir: str, found: Found | None = None) -> TextFile:
    """The text file a CSV or JSON lines source reads: a local file (as it always was), or an
    object read with streaming ranged GETs. ``found`` is what the listing of the glob source
    reading it said of the object (its size, ETag); without it the store is asked now."""
    if not is_object_url(config.path):
        return TextFile(resolve_path(config.path, base_dir), config.path, config.encoding, config.compression)
    store = store_for(config)
    return TextFile(config.path, config.path, config.encoding, config.compression, remote=store.remote(config.path, found))


def parquet_input(config: Any, base_dir: str, found: Found | None = None) -> tuple[Any, int]:
    """What ``pyarrow.parquet.ParquetFile`` opens for a Parquet source, and its size: a local path,
    or a callable giving a seekable reader of the object (one per reader: partitions read in threads).
    ``found`` is as for :func:`text_file`."""
    if not is_object_url(config.path):
        path = resolve_path(config.path, base_dir)
        if not os.path.exists(path):
            raise SourceError(f"source file not found: {path}")
        if os.path.isdir(path):
            raise SourceError(f"source {path} is a directory, not a file")
        return path, os.path.getsize(path)
    remote = store_for(config).remote(config.path, found)
    return remote.random_access, remote.size
