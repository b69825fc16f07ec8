"""Where the service keeps its state, read from the environment; passwords never shown."""

from __future__ import annotations

import pytest

from portl.errors import ConfigError, ServiceError
from portl.secrets import MASK
from portl.service.db import check_reachable, create_engine
from portl.service.settings import load_settings, normalise_url


def test_without_settings_the_state_is_a_sqlite_file_in_dot_portl_here(tmp_path):
    settings = load_settings(environ={}, cwd=tmp_path)

    assert settings.home == tmp_path / ".portl"
    assert settings.database_url == f"sqlite:///{tmp_path / '.portl' / 'service.db'}"
    assert settings.is_sqlite


def test_portl_home_moves_the_default_database_and_is_taken_from_the_current_folder(tmp_path):
    settings = load_settings(environ={"PORTL_HOME": "state/service"}, cwd=tmp_path)

    assert settings.home == tmp_path / "state" / "service"
    assert settings.database_url == f"sqlite:///{tmp_path / 'state' / 'service' / 'service.db'}"


@pytest.mark.parametrize("given", ["postgresql://portl:pw@db.internal:5432/portl", "postgres://portl:pw@db.internal:5432/portl"])
def test_a_postgres_url_is_opened_with_psycopg_3(given):
    settings = load_settings(environ={"PORTL_SERVICE_DATABASE": given})

    assert settings.database_url == "postgresql+psycopg://portl:pw@db.internal:5432/portl"
    assert not settings.is_sqlite


def test_an_explicit_driver_and_a_sqlite_url_are_kept_as_given():
    assert normalise_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:////var/lib/portl/state.db") == "sqlite:////var/lib/portl/state.db"


def test_the_settings_repr_masks_the_database_password(tmp_path):
    settings = load_settings(environ={"PORTL_SERVICE_DATABASE": "postgresql://portl:hunter2@db:5432/portl",
                                      "PORTL_HOME": str(tmp_path)})

    shown = repr(settings)

    assert "hunter2" not in shown
    assert f"postgresql+psycopg://portl:{MASK}@db:5432/portl" in shown
    assert settings.shown_database == f"postgresql+psycopg://portl:{MASK}@db:5432/portl"


def test_a_database_portl_cannot_use_is_refused_naming_the_variable_and_masking_the_password():
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"PORTL_SERVICE_DATABASE": "mysql://root:hunter2@db/portl"})

    message = str(info.value)
    assert message.startswith(f"PORTL_SERVICE_DATABASE='mysql://root:{MASK}@db/portl' is not a state database")
    assert "hunter2" not in message
    assert "postgresql://" in message and "sqlite:///" in message


def test_an_unreachable_database_is_a_service_error_naming_it_with_the_password_masked():
    engine = create_engine("postgresql+psycopg://portl:hunter2@127.0.0.1:1/portl")  # nothing listens on port 1

    with pytest.raises(ServiceError) as info:
        check_reachable(engine)

    message = str(info.value)
    assert message.startswith(f"cannot reach the service's state database postgresql+psycopg://portl:{MASK}@127.0.0.1:1/portl: ")
    assert "hunter2" not in message
    assert message.endswith("check PORTL_SERVICE_DATABASE and that the server is running")
    assert "\n" not in message


def test_a_sqlite_state_database_has_foreign_keys_on_and_write_ahead_logging(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'new' / 'service.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()
    assert (tmp_path / "new" / "service.db").exists()  # its folder was made
