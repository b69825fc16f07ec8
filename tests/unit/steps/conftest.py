"""Helpers for the flow tests: write a flow file, load it, collect the problems it has."""

from __future__ import annotations

import textwrap

import pytest

#: Connections most test flows use; nothing listens on these ports, and no test connects.
CONNECTIONS = """
connections:
  db: {type: postgres, url: "postgresql://flow:s3cret-pw@127.0.0.1:1/flows"}
  api: {type: http, base_url: "http://127.0.0.1:1/v1", headers: {Authorization: "Bearer tok-123456"}}
  aws: {type: lambda, endpoint_url: "http://127.0.0.1:1", access_key_id: key, secret_access_key: secret-key-99}
"""


@pytest.fixture
def flow_file(write):
    """``flow_file(steps_yaml, extra="")``: a v2 flow with CONNECTIONS (on lines 2-5), then
    ``extra`` as written (lines indented by two spaces add connections), then the steps."""

    def _flow(steps: str, extra: str = "", name: str = "flow.yaml") -> str:
        body = "version: 2\n" + textwrap.dedent(CONNECTIONS).lstrip("\n") + extra
        return write(name, body + "steps:\n" + textwrap.indent(textwrap.dedent(steps).strip("\n"), "  ") + "\n")

    return _flow
