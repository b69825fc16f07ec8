"""An installed Portl can migrate: every file of the migrations folder ships as package data."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "src" / "portl"


def test_every_migration_file_is_declared_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["portl"]
    files = [p.relative_to(PACKAGE).as_posix() for p in (PACKAGE / "service" / "migrations").rglob("*")
             if p.is_file() and "__pycache__" not in p.parts]

    shipped = {p.relative_to(PACKAGE).as_posix() for pattern in patterns for p in PACKAGE.glob(pattern)}  # as setuptools globs

    assert "service/migrations/versions/0001_initial.py" in files
    assert [f for f in files if f not in shipped] == []


def test_the_service_extra_names_its_libraries_and_dev_installs_them():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]

    assert extras["service"] == ["sqlalchemy>=2.0", "alembic>=1.13", "fastapi>=0.110", "uvicorn>=0.29",
                                 "celery[redis]>=5.3,<6", "python-multipart>=0.0.9"]
    assert set(extras["service"]) <= set(extras["dev"])
