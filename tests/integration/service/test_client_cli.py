"""`portl submit` and `portl jobs` as a user runs them (subprocesses) against a real `portl serve`:
a job submitted and waited for, invalid jobs located in the user's file, refused keys, a server
that is not there, listing, showing and cancelling. The API key never appears in any output."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.service.apiserver import PORTL, ServiceServer, free_port

PEOPLE_JOB = """\
name: people
source: {type: csv, path: people.csv}
destination: {type: sqlite, path: out.db, table: people}
mapping:
  columns:
    id: {type: bigint, required: true}
    name: {type: text}
"""

INVALID_JOB = """\
name: people
source:
  type: csv
  path: people.csv
  delimeter: ";"
destination:
  type: sqlite
  path: out.db
  tabel: people
mode: apend
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    served = ServiceServer(tmp_path_factory.mktemp("client") / "home")
    served.home.mkdir()
    served.key, tenant_id = served.tenant("acme")
    served.other_key, _ = served.tenant("globex")
    files = served.files(tenant_id)
    files.mkdir(parents=True, exist_ok=True)
    (files / "people.csv").write_text("id,name\n" + "".join(f"{i},person {i}\n" for i in range(1, 101)))
    served.tenant_files = files
    served.start()
    yield served
    served.stop()


def portl(*args: str, server: ServiceServer | None = None, key: str | None = None, cwd=None,
          stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PORTL_SERVER", "PORTL_API_KEY")}
    if server is not None:
        env["PORTL_SERVER"] = server.url
    if key is not None:
        env["PORTL_API_KEY"] = key
    result = subprocess.run([*PORTL, *args], env=env, cwd=cwd, capture_output=True, text=True, input=stdin,
                            timeout=60)
    if server is not None:
        for secret in (server.key, server.other_key):
            assert secret not in result.stdout + result.stderr
    return result


def job_file(tmp_path, text: str = PEOPLE_JOB, name: str = "job.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_submit_wait_runs_the_job_and_prints_the_finished_job_as_json(server, tmp_path):
    result = portl("submit", str(job_file(tmp_path)), "--wait", "--interval", "0.1", "--format", "json",
                   "--label", "team=crm", server=server, key=server.key)

    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["status"] == "succeeded"
    assert job["name"] == "people"
    assert job["labels"] == {"team": "crm"}
    assert job["counts"] == {"read": 100, "inserted": 100, "updated": 0, "skipped": 0, "rejected": 0}
    assert job["error"] is None
    with sqlite3.connect(server.tenant_files / "out.db") as db:
        assert db.execute("SELECT count(*), min(id), max(id) FROM people").fetchone() == (100, 1, 100)


def test_submit_wait_in_text_shows_the_job_like_runs_show_and_nothing_else_when_piped(server, tmp_path):
    result = portl("submit", str(job_file(tmp_path)), "--wait", "--interval", "0.1", "--name", "text-run",
                   server=server, key=server.key)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("job ")
    assert lines[1] == "name text-run"
    assert lines[2] == "status succeeded"
    assert "counts read 100, inserted 100, updated 0, skipped 0, rejected 0" in lines
    assert "\r" not in result.stderr  # no progress line when stderr is not a terminal
    assert result.stderr.startswith("submitted job ")


def test_submit_without_wait_prints_only_the_job_id(server, tmp_path):
    result = portl("submit", "-", "--name", "from-stdin", server=server, key=server.key, stdin=PEOPLE_JOB)

    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    shown = portl("jobs", "show", job_id, "--format", "json", server=server, key=server.key)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == job_id
    assert json.loads(shown.stdout)["name"] == "from-stdin"


def test_an_invalid_job_is_refused_with_its_problems_at_their_lines_in_the_users_file(server, tmp_path):
    path = job_file(tmp_path, INVALID_JOB, "bad.yaml")

    result = portl("submit", str(path), server=server, key=server.key)

    assert result.returncode == 2
    assert result.stdout == ""
    assert "the server refused the job: the job has 3 problems; nothing was queued" in result.stderr
    assert f"{path}:5:3: unknown key 'delimeter'" in result.stderr
    assert f"{path}:9:3: unknown key 'tabel' in destination; did you mean 'table'?" in result.stderr
    assert f"{path}:10:7: mode: expected one of append, replace or upsert" in result.stderr
    assert "job.yaml" not in result.stderr


def test_an_invalid_job_in_json_lists_its_located_problems(server, tmp_path):
    path = job_file(tmp_path, INVALID_JOB, "bad.yaml")

    result = portl("submit", str(path), "--format", "json", server=server, key=server.key)

    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert error["exit_code"] == 2
    assert [(p["file"], p["line"]) for p in error["problems"]] == [(str(path), 5), (str(path), 9), (str(path), 10)]


def test_a_refused_key_is_said_plainly_and_never_shown(server, tmp_path):
    wrong = "ptl_live_abcdefgh_" + "x" * 43

    result = portl("jobs", "list", "--api-key", wrong, server=server)

    assert result.returncode == 1
    assert "refused the API key" in result.stderr and "--api-key" in result.stderr
    assert wrong not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_no_key_at_all_says_how_to_give_one(server):
    result = portl("jobs", "list", server=server)

    assert result.returncode == 2
    assert "no API key: pass --api-key KEY or set PORTL_API_KEY" in result.stderr


def test_an_unreachable_server_is_said_plainly(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"

    result = portl("jobs", "list", "--server", url, "--api-key", "ptl_live_abcdefgh_secret", cwd=tmp_path)

    assert result.returncode == 1
    assert f"cannot reach the Portl server at {url}: " in result.stderr
    assert "start one with `portl serve` or set --server" in result.stderr
    assert "ptl_live_abcdefgh_secret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_list_shows_the_tenants_jobs_newest_first_filtered_by_label_and_limited(server, tmp_path):
    path = job_file(tmp_path)
    submitted = []
    for n in range(3):
        done = portl("submit", str(path), "--wait", "--interval", "0.1", "--name", f"listed-{n}", "--format", "json",
                     "--label", "batch=listing", server=server, key=server.key)
        assert done.returncode == 0, done.stderr
        submitted.append(json.loads(done.stdout)["id"])

    listed = portl("jobs", "list", "--label", "batch=listing", "--format", "json", server=server, key=server.key)
    limited = portl("jobs", "list", "--label", "batch=listing", "--limit", "2", server=server, key=server.key)
    other = portl("jobs", "list", "--format", "json", server=server, key=server.other_key)

    assert [j["id"] for j in json.loads(listed.stdout)] == submitted[::-1]
    rows = limited.stdout.splitlines()
    assert rows[0].split()[:4] == ["job", "name", "status", "created"]
    assert [r.split()[:3] for r in rows[1:]] == [[submitted[2], "listed-2", "succeeded"],
                                               [submitted[1], "listed-1", "succeeded"]]
    assert json.loads(other.stdout) == []  # another tenant sees none of them


def test_show_an_unknown_job_and_a_malformed_id(server):
    unknown = portl("jobs", "show", "00000000-0000-0000-0000-000000000000", server=server, key=server.key)
    malformed = portl("jobs", "show", "nope", server=server, key=server.key)

    assert unknown.returncode == 1
    assert "no job 00000000-0000-0000-0000-000000000000 for tenant 'acme'" in unknown.stderr
    assert "`portl jobs list` lists your jobs" in unknown.stderr
    assert malformed.returncode == 2
    assert "'nope' is not a job id" in malformed.stderr


def test_cancelling_a_finished_job_is_refused_in_one_sentence(server, tmp_path):
    done = portl("submit", str(job_file(tmp_path)), "--wait", "--interval", "0.1", "--format", "json",
                 server=server, key=server.key)
    job_id = json.loads(done.stdout)["id"]

    refused = portl("jobs", "cancel", job_id, server=server, key=server.key)

    assert refused.returncode == 1
    assert f"job {job_id} has already finished (succeeded); there is nothing to cancel" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_a_job_cancelled_while_submit_waits_ends_the_wait_with_exit_130(server, tmp_path):
    slow = PEOPLE_JOB.replace("people.csv", "many.csv").replace("out.db", "many.db") + "batch: {size: 50}\n"
    (server.tenant_files / "many.csv").write_text("id,name\n" + "".join(f"{i},p{i}\n" for i in range(1, 100_001)))
    env = {**os.environ, "PORTL_SERVER": server.url, "PORTL_API_KEY": server.key}
    waiting = subprocess.Popen([*PORTL, "submit", str(job_file(tmp_path, slow)), "--wait", "--interval", "0.05",
                                "--format", "json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = waiting.stderr.readline()
        assert first.startswith("submitted job "), first
        job_id = first.split()[2]

        cancelled = portl("jobs", "cancel", job_id, server=server, key=server.key)
        stdout, stderr = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()

    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() in (f"job {job_id} cancelled",
                                        f"job {job_id} cancelling; it stops after the batch it is writing")
    assert waiting.returncode == 130, stderr
    job = json.loads(stdout)
    assert (job["id"], job["status"]) == (job_id, "cancelled")
    assert job["counts"]["read"] < 100_000
    assert server.key not in stdout + stderr


AGES_JOB = """\
name: ages
source: {type: csv, path: ages.csv}
destination: {type: sqlite, path: ages.db, table: ages}
mapping:
  columns:
    id: {type: bigint, required: true}
    age: {type: int}
"""


def test_logs_show_each_rejected_record_with_where_it_came_from_and_why(server, tmp_path):
    (server.tenant_files / "ages.csv").write_text("id,age\n1,30\n2,old\n3,41\n4,young\n")
    done = portl("submit", str(job_file(tmp_path, AGES_JOB)), "--wait", "--interval", "0.1", "--format", "json",
                 server=server, key=server.key)
    job = json.loads(done.stdout)
    assert job["counts"]["rejected"] == 2

    as_json = portl("jobs", "logs", job["id"], "--outcome", "rejected", "--format", "json", server=server, key=server.key)
    as_text = portl("jobs", "logs", job["id"], server=server, key=server.key)

    assert as_json.returncode == 0, as_json.stderr
    logged = json.loads(as_json.stdout)
    assert [(e["outcome"], e["source_location"], e["column"], e["value"]) for e in logged["entries"]] == [
        ("rejected", "ages.csv, line 3, record 2", "age", "old"), ("rejected", "ages.csv, line 5, record 4", "age", "young")]
    assert logged["more"] is False
    lines = as_text.stdout.splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"batch \d+: job ages: the whole source: read 4, inserted 2, updated 0, rejected 2", lines[0])
    assert lines[1].startswith("rejected ages.csv, line 3, record 2: column age, value 'old': ")


def test_logs_for_a_key_that_was_not_rejected_say_what_that_means(server, tmp_path):
    done = portl("submit", str(job_file(tmp_path)), "--wait", "--interval", "0.1", "--format", "json",
                 server=server, key=server.key)

    result = portl("jobs", "logs", json.loads(done.stdout)["id"], "--key", "7", server=server, key=server.key)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "no records logged for this job (with these filters)\n"
    assert "no rejected or skipped record of this job has the key '7'" in result.stderr


def test_retry_runs_a_failed_job_again_once_its_source_is_there(server, tmp_path):
    text = PEOPLE_JOB.replace("people.csv", "late.csv").replace("out.db", "late.db")
    failed = portl("submit", str(job_file(tmp_path, text)), "--wait", "--interval", "0.1", "--format", "json",
                   server=server, key=server.key)
    assert failed.returncode == 1
    job = json.loads(failed.stdout)
    assert job["status"] == "failed" and "late.csv" in job["error"]

    (server.tenant_files / "late.csv").write_text("id,name\n1,a\n2,b\n3,c\n")
    retried = portl("jobs", "retry", job["id"], "--wait", "--interval", "0.1", server=server, key=server.key)
    again = portl("jobs", "retry", job["id"], server=server, key=server.key)

    assert retried.returncode == 0, retried.stderr
    assert "status succeeded" in retried.stdout.splitlines()
    assert "counts read 3, inserted 3, updated 0, skipped 0, rejected 0" in retried.stdout.splitlines()
    assert "attempts 2" in retried.stdout.splitlines()
    assert again.returncode == 1
    assert f"job {job['id']} is succeeded; only a failed, partial or cancelled job can be retried" in again.stderr


def readme_service_blocks() -> list[str]:
    text = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = text.split("## The service", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def test_the_readme_commands_start_a_server_and_run_the_quick_start_job_on_it(tmp_path):
    start, submit = readme_service_blocks()
    shutil.copytree(Path(__file__).resolve().parents[3] / "examples" / "quickstart", tmp_path / "examples" / "quickstart")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTL_")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", PORTL_SERVE_PORT=str(port),
               PORTL_SERVER=f"http://127.0.0.1:{port}")
    server = subprocess.Popen(["bash", "-c", start], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the README's server did not start"
            time.sleep(0.05)
        done = subprocess.run(["bash", "-c", submit], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the README's shell and the server it started
        server.wait(timeout=15)

    assert done.returncode == 0, done.stderr
    assert "status succeeded" in done.stdout.splitlines()
    assert "counts read 25, inserted 18, updated 2, skipped 0, rejected 5" in done.stdout.splitlines()
    key = (tmp_path / "demo.key").read_text().strip()
    assert key.startswith("ptl_live_") and key not in done.stdout + done.stderr


def test_a_server_address_without_its_scheme_is_refused_before_any_request(tmp_path):
    result = portl("jobs", "list", "--server", "127.0.0.1:8080", "--api-key", "ptl_live_abcdefgh_secret", cwd=tmp_path)

    assert result.returncode == 2
    assert "--server should be the server's http:// or https:// address, e.g. http://127.0.0.1:8080; got " \
           "'127.0.0.1:8080'" in result.stderr


def test_submit_wait_shows_a_progress_line_on_a_terminal(server, tmp_path):
    import pty

    env = {**os.environ, "PORTL_SERVER": server.url, "PORTL_API_KEY": server.key, "COLUMNS": "120"}
    leader, follower = pty.openpty()
    try:
        done = subprocess.run([*PORTL, "submit", str(job_file(tmp_path)), "--wait", "--interval", "0.05"], env=env,
                              stdout=subprocess.PIPE, stderr=follower, text=True, timeout=60)
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal's other end is closed: all of it has been read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)

    assert done.returncode == 0
    terminal = shown.decode()
    assert re.search(r"\r(queued|running|succeeded): \d[\d,]* (of 100 )?rows", terminal), terminal
    assert server.key not in terminal + done.stdout
