"""The admin commands end to end, through the real ``portl`` command in a subprocess, on a fresh
folder (the state database is created on first use) and on the real PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from portl.secrets import MASK
from portl.service.settings import ServiceSettings, normalise_url
from portl.service.store import open_store

_INSTALLED = Path(sys.executable).with_name("portl")
PORTL = [str(_INSTALLED)] if _INSTALLED.exists() else [sys.executable, "-m", "portl.cli.app"]
KEY = re.compile(r"ptl_live_[a-z0-9]{8}_[A-Za-z0-9_-]{43}")


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self):
        return json.loads(self.stdout)


@pytest.fixture
def portl(tmp_path):
    """``portl(*args, database=None)``: run the command in tmp_path, the service's state in
    tmp_path/.portl (or ``database``)."""

    def run(*args: str, database: str | None = None) -> Ran:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTL_")}
        env["COLUMNS"] = "200"
        if database:
            env["PORTL_SERVICE_DATABASE"] = database
        done = subprocess.run([*PORTL, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        return Ran(done.returncode, done.stdout, done.stderr)

    return run


def verify(tmp_path: Path, key: str):
    """Verify a key as the API will, from Python, on the folder's state database."""
    with open_store(ServiceSettings(tmp_path / ".portl", f"sqlite:///{tmp_path / '.portl' / 'service.db'}")) as store:
        return store.tenants.verify(key)


def test_tenants_create_prints_the_key_alone_on_stdout_and_warns_it_is_shown_once(portl, tmp_path):
    created = portl("tenants", "create", "acme")

    assert created.code == 0, created.stderr
    assert KEY.fullmatch(created.stdout.strip())
    assert "upgraded to schema revision 0002" in created.stderr  # a fresh folder: the schema was made first
    assert "tenant 'acme' created. Its API key is printed below, this once only: store it now" in created.stderr
    assert (tmp_path / ".portl" / "service.db").exists()
    assert verify(tmp_path, created.stdout.strip()).tenant == "acme"


def test_tenants_create_as_json_holds_the_key_its_prefix_and_the_tenant(portl, tmp_path):
    created = portl("tenants", "create", "acme", "--format", "json")

    document = created.json
    assert set(document) == {"tenant", "key_prefix", "api_key"}
    assert document["tenant"] == "acme"
    assert document["api_key"].startswith(document["key_prefix"] + "_")
    assert verify(tmp_path, document["api_key"]).key_prefix == document["key_prefix"]


def test_tenants_list_shows_allowances_and_never_a_key(portl, tmp_path):
    key = portl("tenants", "create", "acme").stdout.strip()
    portl("tenants", "create", "globex")
    allowed = portl("tenants", "allow", "acme", "--local-files", "--code-hooks")

    text = portl("tenants", "list")
    as_json = portl("tenants", "list", "--format", "json")

    assert allowed.stdout.strip() == "tenant 'acme': allowed local files, code hooks; refused private network"
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["id", "tenant", "created", "local", "files", "code", "hooks", "private", "net", "keys",
                                "jobs", "req/min", "files", "folder"]
    rows = [line.split() for line in lines[1:] if len(line.split()) >= 9]  # a long folder folds onto more lines
    assert [row[:2] for row in rows] == [["1", "acme"], ["2", "globex"]]
    assert rows[0][3:9] == ["yes", "yes", "no", "1", "4", "600"]
    assert str(tmp_path / ".portl" / "tenants" / "2" / "files") in "".join(text.stdout.split())
    assert [(t["name"], t["allowed"], t["live_keys"]) for t in as_json.json] == [
        ("acme", {"local_files": True, "code_hooks": True, "private_network": False}, 1),
        ("globex", {"local_files": False, "code_hooks": False, "private_network": False}, 1),
    ]
    for listing in (text, as_json):
        assert key not in listing.stdout + listing.stderr
        assert key.split("_")[-1] not in listing.stdout


def test_tenants_allow_no_withdraws_and_needs_something_to_change(portl):
    portl("tenants", "create", "acme")
    portl("tenants", "allow", "acme", "--local-files", "--private-network")

    withdrawn = portl("tenants", "allow", "acme", "--no-private-network", "--format", "json")
    nothing = portl("tenants", "allow", "acme")

    assert withdrawn.json["allowed"] == {"local_files": True, "code_hooks": False, "private_network": False}
    assert nothing.code == 2
    assert "name what to allow or withdraw: --local-files, --code-hooks, --private-network" in nothing.stderr


def test_tenants_list_as_json_has_each_tenants_id_limits_keys_and_files_folder(portl, tmp_path):
    portl("tenants", "create", "acme")
    portl("keys", "create", "acme")

    [acme] = portl("tenants", "list", "--format", "json").json

    assert set(acme) == {"id", "name", "created_at", "allowed", "max_running_jobs", "requests_per_minute", "live_keys",
                         "files_dir"}
    assert (acme["id"], acme["max_running_jobs"], acme["requests_per_minute"], acme["live_keys"]) == (1, 4, 600, 2)
    assert acme["files_dir"] == str(tmp_path / ".portl" / "tenants" / "1" / "files")


def test_tenants_set_changes_the_limits_named_and_keeps_the_others(portl, tmp_path):
    portl("tenants", "create", "acme")
    portl("tenants", "create", "globex")

    both = portl("tenants", "set", "acme", "--max-running-jobs", "2", "--requests-per-minute", "120")
    one = portl("tenants", "set", "acme", "--requests-per-minute", "1", "--format", "json")
    listed = portl("tenants", "list", "--format", "json").json

    assert both.code == 0, both.stderr
    assert both.stdout.strip() == "tenant 'acme': at most 2 running jobs at once, 120 requests a minute"
    assert (one.json["max_running_jobs"], one.json["requests_per_minute"]) == (2, 1)
    assert [(t["name"], t["max_running_jobs"], t["requests_per_minute"]) for t in listed] == [
        ("acme", 2, 1), ("globex", 4, 600)]
    with open_store(ServiceSettings(tmp_path / ".portl", f"sqlite:///{tmp_path / '.portl' / 'service.db'}")) as store:
        assert store.tenants.verify(portl("keys", "create", "acme").stdout.strip()).requests_per_minute == 1


@pytest.mark.parametrize(("args", "says"), [
    (["--max-running-jobs", "0"], "Invalid value for '--max-running-jobs': 0 is not allowed: give a whole number "
                                  "from 1 to 2,147,483,647"),
    (["--requests-per-minute", "-5"], "Invalid value for '--requests-per-minute': -5 is not allowed"),
    (["--requests-per-minute", "2.5"], "Invalid value for '--requests-per-minute'"),
    (["--requests-per-minute", "3000000000"], "3000000000 is not allowed: give a whole number from 1 to 2,147,483,647"),
    ([], "name a limit to set: --max-running-jobs N, --requests-per-minute N"),
])
def test_tenants_set_refuses_what_is_not_a_whole_number_from_1_and_changes_nothing(portl, args, says):
    portl("tenants", "create", "acme")

    refused = portl("tenants", "set", "acme", *args)

    assert refused.code == 2
    assert says in refused.stderr
    [acme] = portl("tenants", "list", "--format", "json").json
    assert (acme["max_running_jobs"], acme["requests_per_minute"]) == (4, 600)


def test_tenants_set_on_an_unknown_tenant_suggests_the_closest_name(portl):
    portl("tenants", "create", "acme")

    refused = portl("tenants", "set", "acmee", "--max-running-jobs", "2")

    assert refused.code == 1
    assert refused.stderr.strip() == "error: no tenant named 'acmee'; did you mean 'acme'?"


def test_keys_create_list_revoke_and_rotate(portl, tmp_path):
    first = portl("tenants", "create", "acme", "--format", "json").json
    second = portl("keys", "create", "acme", "--format", "json").json

    revoked = portl("keys", "revoke", first["key_prefix"])
    rotated = portl("keys", "rotate", second["key_prefix"], "--format", "json").json
    listed = portl("keys", "list", "acme", "--format", "json").json
    text = portl("keys", "list", "acme")

    assert revoked.stdout.strip() == f"key {first['key_prefix']} of tenant 'acme' revoked"
    assert rotated["revoked_prefix"] == second["key_prefix"] and rotated["tenant"] == "acme"
    assert [(k["prefix"], k["revoked_at"] is not None) for k in listed] == [
        (first["key_prefix"], True), (second["key_prefix"], True), (rotated["key_prefix"], False)]
    assert set(listed[0]) == {"prefix", "tenant", "created_at", "last_used_at", "revoked_at"}
    for key in (first, second, rotated):
        assert key["api_key"] not in text.stdout
    assert verify(tmp_path, rotated["api_key"]).tenant == "acme"
    from portl.errors import KeyRefused

    for refused in (first, second):
        with pytest.raises(KeyRefused, match="was revoked on"):
            verify(tmp_path, refused["api_key"])


def test_keys_list_shows_when_a_key_was_last_used(portl, tmp_path):
    key = portl("tenants", "create", "acme").stdout.strip()
    verify(tmp_path, key)

    [shown] = portl("keys", "list", "acme", "--format", "json").json
    line = portl("keys", "list", "acme").stdout.splitlines()[1]

    assert shown["last_used_at"] is not None
    assert line.split()[0] == key[:17] and "never" not in line and line.rstrip().endswith("—")


def test_a_duplicate_tenant_is_an_error_saying_what_to_do_instead(portl):
    portl("tenants", "create", "acme")

    again = portl("tenants", "create", "acme")

    assert again.code == 1
    assert again.stdout == ""
    assert again.stderr.strip() == "error: a tenant named 'acme' already exists; `portl keys create acme` makes it another key"


def test_an_unknown_tenant_suggests_the_closest_name_in_text_and_json(portl):
    portl("tenants", "create", "acme")

    text = portl("keys", "create", "acmee")
    as_json = portl("tenants", "allow", "acme-corp", "--code-hooks", "--format", "json")

    assert text.code == 1 and "Traceback" not in text.stderr
    assert text.stderr.strip() == "error: no tenant named 'acmee'; did you mean 'acme'?"
    error = json.loads(as_json.stdout)["error"]
    assert (error["type"], error["message"], error["exit_code"]) == (
        "ServiceError", "no tenant named 'acme-corp'; did you mean 'acme'?", 1)


def test_an_unknown_key_prefix_is_an_error(portl):
    portl("tenants", "create", "acme")

    result = portl("keys", "revoke", "ptl_live_00000000")

    assert result.code == 1
    assert result.stderr.strip().startswith("error: no API key with prefix 'ptl_live_00000000'")


def test_service_migrate_creates_the_schema_then_has_nothing_to_do(portl, tmp_path):
    first = portl("service", "migrate")
    second = portl("service", "migrate", "--format", "json")

    database = f"sqlite:///{tmp_path / '.portl' / 'service.db'}"
    assert first.stdout.strip() == f"state database {database} upgraded from an empty database to revision 0002"
    assert second.json == {"database": database, "revision": "0002", "previous_revision": "0002", "changed": False}


def test_an_unreachable_state_database_is_one_sentence_with_the_password_masked(portl):
    result = portl("tenants", "list", database="postgresql://admin:hunter2@127.0.0.1:1/portl")

    assert result.code == 1
    assert "hunter2" not in result.stdout + result.stderr
    assert result.stderr.startswith(f"error: cannot reach the service's state database postgresql+psycopg://admin:{MASK}@127.0.0.1:1/portl")
    assert "Traceback" not in result.stderr


def test_the_commands_work_on_postgresql(portl, pg_url):
    migrated = portl("service", "migrate", "--format", "json", database=pg_url)
    created = portl("tenants", "create", "acme", "--format", "json", database=pg_url).json
    listed = portl("tenants", "list", "--format", "json", database=pg_url).json

    assert migrated.json["revision"] == "0002" and migrated.json["database"] == normalise_url(pg_url)
    assert [t["name"] for t in listed] == ["acme"]
    with open_store(ServiceSettings(Path("."), normalise_url(pg_url))) as store:
        assert store.tenants.verify(created["api_key"]).tenant == "acme"
