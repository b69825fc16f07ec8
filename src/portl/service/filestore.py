"""A tenant's ``files/`` folder as the API changes it: names checked, uploads stored whole or not
at all, the files listed and deleted.

A name is a relative path with ``/`` between folders (``crm/people.csv``). It is refused when it
is absolute, climbs out with ``..``, has a hidden part (``.env``, ``.git/x``), holds control
characters or backslashes, or is too long; and when it leads out of the folder through a
symbolic link. Refusals are :class:`~portl.errors.ConfigError` (the API answers 422); a name
that collides with what is there (a file where a folder should be) is a
:class:`~portl.errors.ServiceError` (409).

An upload is written to a hidden partial file in the folder (:class:`PartialUpload`), hashed as
it arrives, flushed to disk and then renamed to its name: a reader of the name sees the old file
or the new one, never half of one. Partial files are hidden, so never listed nor nameable.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from portl.errors import ConfigError, ServiceError
from portl.service.settings import whole_number

MAX_UPLOAD_VARIABLE = "PORTL_MAX_UPLOAD_BYTES"
DEFAULT_MAX_UPLOAD_BYTES = 5 * 1024**3
MAX_NAME_CHARS = 1024
MAX_PART_CHARS = 255
PARTIAL_PREFIX = ".upload-"
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\]")
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class StoredFile:
    """An upload once it is in place."""

    path: str
    size: int
    sha256: str
    uploaded_at: datetime


@dataclass(frozen=True)
class FileEntry:
    """A file of the folder as a listing shows it."""

    path: str
    size: int
    modified: datetime


def max_upload_bytes(environ: Mapping[str, str] | None = None) -> int:
    """The largest upload accepted: ``PORTL_MAX_UPLOAD_BYTES``, else 5 GiB."""
    return whole_number(os.environ if environ is None else environ, MAX_UPLOAD_VARIABLE, DEFAULT_MAX_UPLOAD_BYTES,
                        "bytes", "a whole number of bytes from 1 up, e.g. 1073741824 for 1 GiB")


def checked_name(name: str) -> PurePosixPath:
    """``name`` as a relative path inside the folder, or a ConfigError saying what is wrong with it."""
    shown = repr(name) if len(name) <= 80 else repr(name[:77] + "...")
    if not name.strip():
        raise ConfigError("the file's path is empty: give a name such as people.csv or crm/people.csv")
    if len(name) > MAX_NAME_CHARS:
        raise ConfigError(f"the path {shown} is {len(name):,} characters long; at most {MAX_NAME_CHARS:,} are allowed")
    if _UNSAFE.search(name):
        raise ConfigError(f"the path {shown} holds a backslash or a control character; separate folders with '/'")
    if name.startswith(("/", "~")) or _DRIVE.match(name):
        raise ConfigError(f"the path {shown} is absolute; give it relative to your files folder, e.g. crm/people.csv")
    parts = name.split("/")
    for part in parts:
        if part == "..":
            raise ConfigError(f"the path {shown} climbs out of your files folder with '..'; give it without '..'")
        if part == "":
            raise ConfigError(f"the path {shown} has an empty folder name (a '//' or a '/' at its end)")
        if part.startswith("."):
            raise ConfigError(f"the path {shown} has a hidden name, {part!r}; names may not start with '.'")
        if part != part.strip():
            raise ConfigError(f"the path {shown} has a name starting or ending with a space, {part!r}")
        if len(part) > MAX_PART_CHARS:
            raise ConfigError(f"the path {shown} has a name of {len(part)} characters; at most {MAX_PART_CHARS} "
                              "are allowed for each")
    return PurePosixPath(*parts)


def located(folder: Path, name: str) -> Path:
    """Where ``name`` is in ``folder``, once checked; refused when a symbolic link on the way
    leads out of the folder."""
    relative = checked_name(name)
    root = folder.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or target == root:
        raise ConfigError(f"the path {name!r} leads out of your files folder through a symbolic link")
    return target


class PartialUpload:
    """An upload being received: a hidden file in ``folder``, its size and SHA-256 kept up to
    date. :meth:`store` renames it to its name; :meth:`discard` removes it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.partial = folder / f"{PARTIAL_PREFIX}{uuid.uuid4().hex}.part"
        self.size = 0
        self._hash = hashlib.sha256()
        self._file = open(self.partial, "xb")  # noqa: SIM115  (closed by store or discard)

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)

    def store(self, name: str) -> StoredFile:
        """Put the upload in place under ``name`` (replacing a file of that name)."""
        try:
            target = located(self.folder, name)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir():
                raise IsADirectoryError(target)
            os.replace(self.partial, target)
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
            self.discard()
            raise ServiceError(f"cannot store {name!r}: {_collision(self.folder, target, exc)}") from exc
        except BaseException:
            self.discard()
            raise
        return StoredFile(str(checked_name(name)), self.size, self._hash.hexdigest(), datetime.now(timezone.utc))

    def discard(self) -> None:
        self._file.close()
        self.partial.unlink(missing_ok=True)


def _collision(folder: Path, target: Path, exc: OSError) -> str:
    root = folder.resolve()
    if isinstance(exc, IsADirectoryError):
        return f"{target.relative_to(root)} is a folder"
    for parent in reversed(target.relative_to(root).parents):
        if parent.parts and (root / parent).is_file():
            return f"{parent} is a file, not a folder"
    return str(exc)


def list_files(folder: Path) -> list[FileEntry]:
    """The files of ``folder`` and its subfolders, by path; hidden ones and symbolic links left out."""
    root = folder.resolve()
    found = []
    for where, folders, files in os.walk(root):
        folders[:] = [f for f in folders if not f.startswith(".")]
        for name in files:
            path = Path(where) / name
            if name.startswith(".") or path.is_symlink():
                continue
            stat = path.stat()
            found.append(FileEntry(path.relative_to(root).as_posix(), stat.st_size,
                                   datetime.fromtimestamp(stat.st_mtime, timezone.utc)))
    return sorted(found, key=lambda f: f.path)


def delete_file(folder: Path, name: str) -> None:
    """Delete the file ``name``, and the folders it leaves empty; FileNotFoundError when it is
    not there (or is a folder)."""
    target = located(folder, name)
    if not target.is_file():
        raise FileNotFoundError(name)
    target.unlink()
    root = folder.resolve()
    for parent in target.parents:
        if parent == root or not parent.is_relative_to(root):
            break
        try:
            parent.rmdir()
        except OSError:  # not empty
            break
