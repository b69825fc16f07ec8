"""The service's state, opened: the settings' database, migrated to the newest schema, with a
session factory and the tenants on it. Every service command and the API start here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from portl.service.settings import ServiceSettings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from portl.service.migrate import Migrated
    from portl.service.tenants import Tenants


@dataclass
class Store:
    """An open state database. ``migrated`` says which revision it was at and is at now."""

    settings: ServiceSettings
    engine: Engine
    sessions: sessionmaker[Session]
    migrated: Migrated
    tenant_engine: Engine | None = None
    """The engine of ``PORTL_SERVICE_API_DATABASE``, when set."""

    @property
    def tenant_sessions(self) -> sessionmaker[Session]:
        """Sessions for one tenant's requests: as the API role when one is set (row-level security
        then applies), else the same as :attr:`sessions`."""
        if self.tenant_engine is None:
            return self.sessions
        if not hasattr(self, "_tenant_sessions"):
            from portl.service.db import session_factory

            self._tenant_sessions = session_factory(self.tenant_engine)
        return self._tenant_sessions

    @property
    def tenants(self) -> Tenants:
        from portl.service.tenants import Tenants

        return Tenants(self.sessions)

    def close(self) -> None:
        self.engine.dispose()
        if self.tenant_engine is not None:
            self.tenant_engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_store(settings: ServiceSettings | None = None) -> Store:
    """Open the state database of ``settings`` (default: from the environment), creating or
    upgrading its schema first when it is missing or old."""
    from portl.service.db import check_reachable, create_engine, session_factory
    from portl.service.migrate import upgrade_engine

    settings = settings or load_settings()
    engine = create_engine(settings.database_url)
    tenant_engine = None
    try:
        migrated = upgrade_engine(engine)
        if settings.api_database_url:
            tenant_engine = create_engine(settings.api_database_url)
            check_reachable(tenant_engine)
    except BaseException:
        engine.dispose()
        if tenant_engine is not None:
            tenant_engine.dispose()
        raise
    return Store(settings, engine, session_factory(engine), migrated, tenant_engine)
