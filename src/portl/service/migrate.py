"""Bring the state database to the newest schema this Portl knows, with Alembic, from code.

:func:`upgrade` is safe to call at every start: at the newest revision it changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from portl.errors import ServiceError
from portl.secrets import mask_url

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "portl_service_version"
"""Where Alembic records the schema revision: named for Portl, so a database shared with another
application's Alembic history keeps both apart."""
# Taken for the length of an upgrade on PostgreSQL, so that two services starting at once do not
# both create the tables: the second waits, then finds the schema at its newest.
_UPGRADE_LOCK = 0x706F72746C  # "portl"


@dataclass(frozen=True)
class Migrated:
    """The revision the database was at (None: no schema yet) and the one it is at now."""

    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def upgrade(url: str) -> str:
    """Upgrade the database at ``url`` to the newest revision; returns that revision."""
    from portl.service.db import create_engine

    engine = create_engine(url)
    try:
        return upgrade_engine(engine).after
    finally:
        engine.dispose()


def upgrade_engine(engine: Engine) -> Migrated:
    """Upgrade the database of ``engine`` to the newest revision, in one transaction."""
    from alembic import command

    from sqlalchemy.exc import DBAPIError

    from portl.service.db import WRITE_LOCK, unreachable

    try:
        connection = engine.connect()
    except Exception as exc:  # any driver's connection failure
        raise unreachable(engine, exc) from exc
    with connection:
        before = current_revision(connection)
        connection.rollback()  # reading the version began a transaction; the upgrade has its own
        head = head_revision()
        if before is not None and before != head and before not in _known_revisions():
            shown = mask_url(engine.url.render_as_string(hide_password=False))
            raise ServiceError(f"the state database {shown} is at schema revision {before}, which this Portl does not "
                               f"know (its newest is {head}): it was upgraded by a newer Portl; upgrade Portl here too")
        if before != head:
            config = _config()
            config.attributes["connection"] = connection
            try:
                # Under the database's write lock (SQLite) or an advisory lock (PostgreSQL): a second
                # process upgrading at the same time waits, then finds nothing left to do.
                with connection.execution_options(**{WRITE_LOCK: True}).begin():
                    if connection.dialect.name == "postgresql":
                        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_UPGRADE_LOCK})")
                    before = current_revision(connection)  # again, now that no one else is upgrading
                    if before != head:
                        command.upgrade(config, "head")
            except DBAPIError as exc:
                shown = mask_url(engine.url.render_as_string(hide_password=False))
                reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
                raise ServiceError(f"could not upgrade the state database {shown} to schema revision {head}: "
                                   f"{mask_url(reason)}; nothing was changed. The user in PORTL_SERVICE_DATABASE must "
                                   "be allowed to create tables") from exc
        after = current_revision(connection)
        connection.rollback()
        return Migrated(before, after or head)


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or None when it holds no service schema."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def head_revision() -> str:
    """The newest revision this Portl knows."""
    head = _scripts().get_current_head()
    assert head is not None, "the service's migrations folder holds no revision"
    return head


def _known_revisions() -> set[str]:
    return {script.revision for script in _scripts().walk_revisions()}


def _scripts():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def _config():
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config
