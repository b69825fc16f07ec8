"""Fixtures shared by every test folder."""

from tests.services import mysql_url, pg_url  # noqa: F401  (fixtures)
from tests.fakes.fixtures import http_recorder, lambda_server  # noqa: F401  (fixtures)
