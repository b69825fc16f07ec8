"""`portl files` and `portl jobs delete` as a user runs them (subprocesses) against a real `portl
serve`: a local file uploaded, listed and deleted, in text and JSON; a job reading the upload;
refusals as one sentence with an exit code; the service page's upload examples, run as written.
The API key never appears in any output."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.service.apiserver import PORTL, ServiceServer
from tests.integration.service.test_api_runs import job_text
from tests.integration.service.test_client_cli import portl

LIMIT = 32 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    served = ServiceServer(tmp_path_factory.mktemp("client-files") / "home")
    served.home.mkdir()
    served.key, served.tenant_id = served.tenant("acme")
    served.other_key, _ = served.tenant("globex")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PORTL_MAX_UPLOAD_BYTES", str(LIMIT))
        served.start()
    yield served
    served.stop()


@pytest.fixture
def files(server):
    """The tenant's files folder on the server, emptied after the test."""
    folder = server.files(server.tenant_id)
    yield folder
    for path in sorted(folder.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()


def people_csv(tmp_path, rows: int = 20):
    path = tmp_path / "people.csv"
    path.write_text("id,name,age\n" + "".join(f"{n},person {n},{20 + n}\n" for n in range(1, rows + 1)))
    return path


def test_files_upload_stores_the_file_under_its_name_and_says_so(server, files, tmp_path):
    local = people_csv(tmp_path)

    result = portl("files", "upload", str(local), server=server, key=server.key)

    assert result.returncode == 0, result.stderr
    digest = hashlib.sha256(local.read_bytes()).hexdigest()
    assert result.stdout.strip() == f"uploaded people.csv ({local.stat().st_size:,} bytes, sha256 {digest})"
    assert (files / "people.csv").read_bytes() == local.read_bytes()


def test_files_upload_as_a_path_then_list_and_delete_in_json(server, files, tmp_path):
    local = people_csv(tmp_path)

    uploaded = portl("files", "upload", str(local), "--as", "crm/2026/people.csv", "--format", "json",
                     server=server, key=server.key)
    listed = portl("files", "list", "--format", "json", server=server, key=server.key)
    deleted = portl("files", "delete", "crm/2026/people.csv", "--format", "json", server=server, key=server.key)
    after = portl("files", "list", "--format", "json", server=server, key=server.key)

    stored = json.loads(uploaded.stdout)
    assert (stored["path"], stored["size"]) == ("crm/2026/people.csv", local.stat().st_size)
    assert [(f["path"], f["size"]) for f in json.loads(listed.stdout)] == [("crm/2026/people.csv", local.stat().st_size)]
    assert json.loads(deleted.stdout) == {"path": "crm/2026/people.csv", "deleted": True}
    assert json.loads(after.stdout) == []
    assert not (files / "crm").exists()


def test_files_list_is_a_table_of_path_size_and_modified(server, files, tmp_path):
    local = people_csv(tmp_path)
    portl("files", "upload", str(local), "--as", "b.csv", server=server, key=server.key)
    portl("files", "upload", str(local), "--as", "a name with spaces.csv", server=server, key=server.key)

    listed = portl("files", "list", server=server, key=server.key)
    deleted = portl("files", "delete", "a name with spaces.csv", server=server, key=server.key)

    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["path", "size", "modified"]
    assert [line.split()[:-2] for line in lines[1:]] == [["a", "name", "with", "spaces.csv", f"{local.stat().st_size}"],
                                                         ["b.csv", f"{local.stat().st_size}"]]
    assert deleted.stdout.strip() == "deleted a name with spaces.csv"
    assert sorted(p.name for p in files.iterdir()) == ["b.csv"]


def test_an_empty_folder_is_said_so(server, files):
    listed = portl("files", "list", server=server, key=server.other_key)

    assert listed.returncode == 0
    assert listed.stdout.strip() == f"no files on {server.url} for this tenant; `portl files upload LOCAL` uploads one"


def test_refusals_are_one_sentence_with_an_exit_code(server, files, tmp_path):
    local = people_csv(tmp_path)
    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * (LIMIT + 1))

    missing = portl("files", "upload", str(tmp_path / "nope.csv"), server=server, key=server.key)
    bad_path = portl("files", "upload", str(local), "--as", "../people.csv", server=server, key=server.key)
    too_big = portl("files", "upload", str(big), server=server, key=server.key)
    not_there = portl("files", "delete", "nope.csv", server=server, key=server.key)

    assert missing.returncode == 2
    assert missing.stderr.strip() == f"error: cannot upload {str(tmp_path / 'nope.csv')!r}: there is no such file"
    assert bad_path.returncode == 2
    assert bad_path.stderr.strip() == ("error: the server refused the request: the path '../people.csv' climbs out "
                                       "of your files folder with '..'; give it without '..'")
    assert too_big.returncode == 1
    assert too_big.stderr.strip() == (f"error: the server at {server.url} refused the upload: the file is larger than "
                                      "this service accepts, 32 KiB (PORTL_MAX_UPLOAD_BYTES=32768); split it, or ask "
                                      "the service's operator to raise the limit")
    assert not_there.returncode == 1
    assert not_there.stderr.strip() == (f"error: no file 'nope.csv' in the files of tenant 'acme' on the server at "
                                        f"{server.url}; `portl files list` lists your files")
    for result in (missing, bad_path, too_big, not_there):
        assert "Traceback" not in result.stderr
    assert list(files.iterdir()) == []


def test_a_job_submitted_after_an_upload_reads_it_and_jobs_delete_removes_it(server, files, tmp_path):
    portl("files", "upload", str(people_csv(tmp_path, rows=40)), server=server, key=server.key)
    job = tmp_path / "job.yaml"
    job.write_text(job_text())

    submitted = portl("submit", str(job), "--wait", "--interval", "0.1", "--format", "json", server=server,
                      key=server.key)
    job_id = json.loads(submitted.stdout)["id"]
    deleted = portl("jobs", "delete", job_id, server=server, key=server.key)
    shown = portl("jobs", "show", job_id, server=server, key=server.key)
    listed = portl("jobs", "list", "--format", "json", server=server, key=server.key)

    assert submitted.returncode == 0, submitted.stderr
    assert json.loads(submitted.stdout)["counts"]["inserted"] == 40
    assert deleted.returncode == 0 and deleted.stdout.strip() == f"job {job_id} deleted"
    assert shown.returncode == 1 and f"no job {job_id} for tenant 'acme'" in shown.stderr
    assert job_id not in [j["id"] for j in json.loads(listed.stdout)]


def test_jobs_delete_of_another_tenants_job_or_a_bad_id_is_refused(server, files, tmp_path):
    portl("files", "upload", str(people_csv(tmp_path)), server=server, key=server.key)
    job = tmp_path / "job.yaml"
    job.write_text(job_text())
    job_id = json.loads(portl("submit", str(job), "--wait", "--interval", "0.1", "--format", "json", server=server,
                              key=server.key).stdout)["id"]

    theirs = portl("jobs", "delete", job_id, "--format", "json", server=server, key=server.other_key)
    malformed = portl("jobs", "delete", "not-a-job", server=server, key=server.key)
    still = portl("jobs", "show", job_id, server=server, key=server.key)

    assert theirs.returncode == 1
    assert json.loads(theirs.stdout.splitlines()[0])["error"]["message"].startswith(f"no job {job_id} for tenant 'globex'")
    assert malformed.returncode == 2 and "'not-a-job' is not a job id" in malformed.stderr
    assert still.returncode == 0


def docs_block(heading: str, after: str) -> list[str]:
    """The commands of the first ```sh block after ``after`` in the service page's section
    ``heading``, continuation lines joined, comments dropped."""
    page = (Path(__file__).resolve().parents[3] / "docs" / "service.md").read_text()
    section = page.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    block = section.split(after, 1)[1].split("```sh\n", 1)[1].split("\n```", 1)[0]
    commands = [line.split("  #", 1)[0].rstrip() for line in block.replace("\\\n", " ").splitlines()]
    return [c for c in commands if c and not c.startswith("#")]


def test_the_upload_examples_of_the_service_page_run(server, files, tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("the page's API examples use curl, which is not installed")
    people_csv(tmp_path)
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "jan.csv").write_text("id,name\n1,jan\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTL_")}
    env.update(KEY=server.key, PORTL_API_KEY=server.key, PORTL_SERVER=server.url, PATH=f"{Path(PORTL[0]).parent}:{env['PATH']}")
    curl = docs_block("Uploading files", "| `DELETE /api/v1/files/{path}`")
    cli = [c for c in docs_block("Uploading files", "From the command line") if not c.startswith("portl submit")]

    ran = []
    for command in [c.replace("http://127.0.0.1:8080", server.url) for c in curl] + cli:
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        ran.append((command.split()[0], done.returncode, done.stdout))

    assert len(curl) == 4 and len(cli) == 4
    assert [code for _, code, _ in ran] == [0] * 8, ran
    assert json.loads(ran[0][2])["path"] == "people.csv"
    assert [f["path"] for f in json.loads(ran[2][2])["files"]] == ["crm/2026/people.csv", "people.csv"]
    assert ran[4][2].startswith("uploaded people.csv (")
    assert sorted(str(p.relative_to(files)) for p in files.rglob("*") if p.is_file()) == ["people.csv"]
