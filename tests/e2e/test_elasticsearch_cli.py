"""``portl`` with an Elasticsearch destination, as a user runs it, against the in-memory stand-in
cluster of tests/fakes/search_server.py (not a real server: none can run here)."""

from __future__ import annotations

import os

import pytest

from tests.e2e.conftest import assert_clean_failure
from tests.fakes.search_server import SearchServer


@pytest.fixture
def secured():
    with SearchServer(username="loader", password="right-pw") as server:
        yield server


def test_run_then_run_with_a_wrong_password(portl, write, secured):
    write("rows.csv", "id,name\n1,ann\n2,bob\n")
    write("job.yaml", f"""
        name: people
        source: {{type: csv, path: rows.csv}}
        destination: {{type: elasticsearch, url: '{secured.url}', index: people, username: loader,
                       password: '${{env:ES_PASSWORD}}'}}
        conflict: {{key: [id]}}
    """)

    result = portl("run", "job.yaml", env={"ES_PASSWORD": "right-pw"})
    assert result.code == 0, result.log
    assert sorted(secured.documents("people")) == ["1", "2"]

    failed = portl("run", "job.yaml", env={"ES_PASSWORD": "wrong-pw-123"})
    assert_clean_failure(failed, 1)
    assert "refused the credentials (401" in failed.stderr and "check username/password or api_key" in failed.stderr
    assert "wrong-pw-123" not in failed.stdout + failed.stderr


def test_a_job_naming_elasticsearch_without_its_client_says_what_to_install(portl, write, tmp_path):
    shadow = tmp_path / "shadow" / "elasticsearch"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("elasticsearch is not installed here (test stand-in)")\n')
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "shadow"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    write("rows.csv", "id\n1\n")
    write("job.yaml", """
        source: {type: csv, path: rows.csv}
        destination: {type: elasticsearch, url: 'http://127.0.0.1:9', index: t}
    """)

    result = portl("plan", "job.yaml", env=env)

    assert_clean_failure(result, 1)
    assert "the elasticsearch connector needs elasticsearch: pip install 'portl[elasticsearch]'" in result.stderr
