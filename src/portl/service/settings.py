"""Where the service keeps things: its folder (``PORTL_HOME``) and its state database
(``PORTL_SERVICE_DATABASE``), read from the environment. Passwords in the database URL never
appear in a repr or a message."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from portl.errors import ConfigError
from portl.secrets import mask_url

HOME_VARIABLE = "PORTL_HOME"
DATABASE_VARIABLE = "PORTL_SERVICE_DATABASE"
API_DATABASE_VARIABLE = "PORTL_SERVICE_API_DATABASE"
"""The same database as a role that owns no table, for the API's tenant requests: on PostgreSQL,
row-level security then holds each request to its tenant's rows whatever its query says."""
DEFAULT_HOME = ".portl"
DEFAULT_DATABASE_FILE = "service.db"

# psycopg 3 is the project's PostgreSQL driver; SQLAlchemy's bare postgresql:// means psycopg2.
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_KNOWN_SCHEMES = ("sqlite", "postgresql+psycopg")


@dataclass(frozen=True)
class ServiceSettings:
    """The service's folder and the SQLAlchemy URL of its state database."""

    home: Path
    database_url: str = field(repr=False)
    api_database_url: str | None = field(default=None, repr=False)
    """``PORTL_SERVICE_API_DATABASE``: what the API's tenant requests connect as (None: as above)."""

    @property
    def shown_database(self) -> str:
        """The database URL with its password masked, for messages."""
        return mask_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def __repr__(self) -> str:
        return f"ServiceSettings(home={str(self.home)!r}, database_url={self.shown_database!r})"


def load_settings(environ: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None) -> ServiceSettings:
    """The settings from ``environ`` (default: the process environment); relative folders are
    taken from ``cwd`` (default: the current folder)."""
    environ = os.environ if environ is None else environ
    base = Path(cwd) if cwd is not None else Path.cwd()
    home = (base / (environ.get(HOME_VARIABLE, "").strip() or DEFAULT_HOME)).absolute()
    url = environ.get(DATABASE_VARIABLE, "").strip()
    api = environ.get(API_DATABASE_VARIABLE, "").strip() or None
    if api is not None:
        api = normalise_url(api)
        if not api.startswith("postgresql") or not url:
            raise ConfigError(f"{API_DATABASE_VARIABLE} is for a PostgreSQL state database, where row-level security "
                              f"can hold the API to each tenant's rows: set {DATABASE_VARIABLE} to that database (as "
                              f"the tables' owner) and {API_DATABASE_VARIABLE} to it as a role that owns no table, or "
                              f"unset {API_DATABASE_VARIABLE}")
    if not url:
        return ServiceSettings(home, f"sqlite:///{home / DEFAULT_DATABASE_FILE}")
    return ServiceSettings(home, normalise_url(url), api)


def whole_number(environ: Mapping[str, str], variable: str, default: int, what: str, hint: str) -> int:
    """The whole number from 1 up that ``variable`` sets, or ``default`` when it is unset; anything
    else is a :class:`~portl.errors.ServiceError` naming the variable, ``what`` it counts and
    ``hint`` (what to give)."""
    from portl.errors import ServiceError

    text = environ.get(variable, "").strip()
    if not text:
        return default
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise ServiceError(f"{variable}={text!r} is not a number of {what}: give {hint}, or unset it for {default}")
    return number


def normalise_url(url: str) -> str:
    """``url`` as SQLAlchemy should open it: PostgreSQL through psycopg 3. Anything but SQLite and
    PostgreSQL is refused, naming the variable to fix."""
    for scheme in _POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    dialect = url.split("://", 1)[0] if "://" in url else ""
    if dialect not in _KNOWN_SCHEMES:
        raise ConfigError(
            f"{DATABASE_VARIABLE}={mask_url(url)!r} is not a state database Portl can use: give a "
            "postgresql://user:password@host/database URL, or a sqlite:///path/to/file.db URL "
            f"(unset it to use {DEFAULT_HOME}/{DEFAULT_DATABASE_FILE})")
    return url
