"""Alembic's environment for the service's state database, configured in code (no alembic.ini).

:func:`portl.service.migrate.upgrade` hands over an open connection in
``config.attributes["connection"]``; without one (the ``alembic`` command pointed at this
folder), the URL comes from the service settings (``PORTL_SERVICE_DATABASE``).
"""

from __future__ import annotations

from alembic import context

from portl.service.migrate import VERSION_TABLE
from portl.service.models import Base


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    from portl.service.db import create_engine
    from portl.service.settings import load_settings

    engine = create_engine(load_settings().database_url)
    try:
        with engine.begin() as own:
            _run_on(own)
    finally:
        engine.dispose()


def _run_on(connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE,
                      render_as_batch=connection.dialect.name == "sqlite")  # SQLite alters tables by copying them
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    from portl.service.settings import load_settings

    context.configure(url=load_settings().database_url, target_metadata=Base.metadata, literal_binds=True,
                      version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
