"""Uploads through a real `portl serve`: a file stored in the tenant's files folder with its size
and hash, listed and deleted; names that would leave the folder or hide refused, naming the
problem; an upload over PORTL_MAX_UPLOAD_BYTES refused with nothing left behind; another
tenant's files out of reach; and a job that loads an uploaded CSV."""

from __future__ import annotations

import hashlib
import os
import sqlite3

import pytest

from tests.integration.service.apiserver import ServiceServer
from tests.integration.service.test_api_runs import wait_for

LIMIT = 64 * 1024
PEOPLE = "id,name\n" + "".join(f"{n},person {n}\n" for n in range(1, 251))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    served = ServiceServer(tmp_path_factory.mktemp("files") / "home")
    served.home.mkdir()
    served.key, served.tenant_id = served.tenant("acme")
    served.other_key, served.other_id = served.tenant("globex")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PORTL_MAX_UPLOAD_BYTES", str(LIMIT))
        served.start()
    yield served
    served.stop()


@pytest.fixture
def client(server):
    with server.client(server.key) as client:
        yield client
        for entry in client.get("/api/v1/files").json()["files"]:  # each test starts from an empty folder
            client.delete(f"/api/v1/files/{entry['path']}")


def upload(client, content: bytes, filename: str = "people.csv", path: str | None = None):
    return client.post("/api/v1/files", files={"file": (filename, content, "text/csv")},
                       data={"path": path} if path is not None else None)


def every_file(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_an_upload_is_stored_under_its_own_name_with_its_size_and_hash(server, client):
    answer = upload(client, PEOPLE.encode())

    assert answer.status_code == 201, answer.text
    stored = answer.json()
    assert set(stored) == {"path", "size", "sha256", "uploaded_at"}
    assert (stored["path"], stored["size"]) == ("people.csv", len(PEOPLE))
    assert stored["sha256"] == hashlib.sha256(PEOPLE.encode()).hexdigest()
    assert (server.files(server.tenant_id) / "people.csv").read_text() == PEOPLE


def test_a_path_field_puts_the_file_in_subfolders_and_the_listing_shows_every_file(server, client):
    upload(client, b"a,b\n", path="crm/2026/accounts.csv")
    upload(client, b"id\n1\n", filename="ids.csv")

    listed = client.get("/api/v1/files")

    assert listed.status_code == 200
    files = listed.json()["files"]
    assert [(f["path"], f["size"]) for f in files] == [("crm/2026/accounts.csv", 4), ("ids.csv", 5)]
    assert all(set(f) == {"path", "size", "modified"} for f in files)
    assert (server.files(server.tenant_id) / "crm" / "2026" / "accounts.csv").read_bytes() == b"a,b\n"


def test_uploading_to_a_path_again_replaces_the_file(server, client):
    upload(client, b"old content\n", path="data.csv")

    again = upload(client, b"new\n", path="data.csv")

    assert again.status_code == 201 and again.json()["size"] == 4
    assert (server.files(server.tenant_id) / "data.csv").read_bytes() == b"new\n"
    assert [f["path"] for f in client.get("/api/v1/files").json()["files"]] == ["data.csv"]


@pytest.mark.parametrize(("path", "says"), [
    ("../escape.csv", "the path '../escape.csv' climbs out of your files folder with '..'"),
    ("/etc/cron.d/x", "the path '/etc/cron.d/x' is absolute"),
    (".bashrc", "the path '.bashrc' has a hidden name, '.bashrc'"),
    ("crm/.secret/x.csv", "has a hidden name, '.secret'"),
    ("x" * 300, "has a name of 300 characters; at most 255 are allowed"),
])
def test_a_refused_path_is_422_naming_the_problem_and_stores_nothing(server, client, path, says):
    answer = upload(client, b"x\n", path=path)

    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "path_invalid"
    assert says in error["message"]
    assert every_file(server.files(server.tenant_id)) == []
    assert not (server.files(server.tenant_id).parent / "escape.csv").exists()


def test_a_path_through_a_symbolic_link_out_of_the_folder_is_refused(server, client, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    link = server.files(server.tenant_id) / "shared"
    link.symlink_to(outside)
    try:
        answer = upload(client, b"x\n", path="shared/x.csv")
        listed = client.get("/api/v1/files").json()["files"]
    finally:
        link.unlink()

    assert answer.status_code == 422
    assert answer.json()["error"]["message"] == "the path 'shared/x.csv' leads out of your files folder through a symbolic link"
    assert os.listdir(outside) == []
    assert listed == []


def test_an_upload_over_the_limit_is_413_and_leaves_no_file_not_even_a_partial_one(server, client):
    answer = upload(client, b"x" * (LIMIT + 1), path="big.csv")
    at_limit = upload(client, b"x" * LIMIT, path="exact.csv")

    assert answer.status_code == 413
    assert answer.json()["error"] == {
        "code": "too_large", "problems": [],
        "message": "the file is larger than this service accepts, 64 KiB (PORTL_MAX_UPLOAD_BYTES=65536); split it, "
                   "or ask the service's operator to raise the limit"}
    assert at_limit.status_code == 201 and at_limit.json()["size"] == LIMIT
    assert every_file(server.files(server.tenant_id)) == ["exact.csv"]  # hidden partial files included


def test_an_upload_far_over_the_limit_is_refused_by_its_length_alone(server, client):
    answer = upload(client, b"x" * (20 * LIMIT), path="huge.csv")

    assert answer.status_code == 413 and answer.json()["error"]["code"] == "too_large"
    assert every_file(server.files(server.tenant_id)) == []


def test_a_form_without_a_file_or_not_a_form_at_all_is_refused(client):
    no_file = client.post("/api/v1/files", files={"path": (None, "x.csv")})
    not_a_form = client.post("/api/v1/files", content=b"id\n1\n", headers={"Content-Type": "text/csv"})
    stray_field = client.post("/api/v1/files", files={"file": ("x.csv", b"x"), "folder": (None, "crm")})

    assert no_file.status_code == 422
    assert no_file.json()["error"]["message"].startswith("the form has no 'file': send the file as the "
                                                        "multipart/form-data field 'file'")
    assert not_a_form.status_code == 415
    assert "an upload is multipart/form-data with the file in the field 'file'" in not_a_form.json()["error"]["message"]
    assert stray_field.status_code == 422
    assert "unknown form field 'folder'" in stray_field.json()["error"]["message"]


def test_an_upload_cut_off_before_the_forms_end_stores_nothing(server, client):
    head = b'--cut\r\nContent-Disposition: form-data; name="file"; filename="people.csv"\r\n\r\n'

    answer = client.post("/api/v1/files", content=head + PEOPLE.encode()[:100],
                         headers={"Content-Type": "multipart/form-data; boundary=cut"})

    assert answer.status_code == 422
    assert answer.json()["error"]["message"] == ("the upload ended before the form's closing boundary, so the file "
                                                 "may be incomplete; nothing was stored: send it again")
    assert every_file(server.files(server.tenant_id)) == []


def test_deleting_a_file_answers_204_and_it_is_gone(server, client):
    upload(client, b"x\n", path="crm/old.csv")
    upload(client, b"y\n", path="keep.csv")

    deleted = client.delete("/api/v1/files/crm/old.csv")
    again = client.delete("/api/v1/files/crm/old.csv")

    assert deleted.status_code == 204 and deleted.content == b""
    assert [f["path"] for f in client.get("/api/v1/files").json()["files"]] == ["keep.csv"]
    assert every_file(server.files(server.tenant_id)) == ["keep.csv"]
    assert not (server.files(server.tenant_id) / "crm").exists()  # the folder it left empty too
    assert again.status_code == 404
    assert again.json()["error"]["message"] == "no file 'crm/old.csv' in the files of tenant 'acme'"


def test_deleting_a_path_out_of_the_folder_is_refused(server, client):
    (server.files(server.tenant_id).parent / "ledger" / "keep.txt").write_text("not yours to delete")

    answer = client.delete("/api/v1/files/..%2Fledger%2Fkeep.txt")

    assert answer.status_code == 422 and answer.json()["error"]["code"] == "path_invalid"
    assert (server.files(server.tenant_id).parent / "ledger" / "keep.txt").exists()


def test_another_tenant_neither_sees_nor_deletes_the_files(server, client):
    upload(client, b"x\n", path="private.csv")

    with server.client(server.other_key) as other:
        theirs = other.get("/api/v1/files").json()
        deleting = other.delete("/api/v1/files/private.csv")
        own = other.post("/api/v1/files", files={"file": ("private.csv", b"globex\n")})

    assert theirs == {"files": []}
    assert deleting.status_code == 404
    assert own.status_code == 201
    assert (server.files(server.tenant_id) / "private.csv").read_bytes() == b"x\n"
    assert (server.files(server.other_id) / "private.csv").read_bytes() == b"globex\n"


def test_the_files_endpoints_need_a_key(server):
    with server.client(None) as anonymous:
        answers = [anonymous.get("/api/v1/files"), anonymous.post("/api/v1/files", files={"file": ("x", b"x")}),
                   anonymous.delete("/api/v1/files/x")]

    assert [a.status_code for a in answers] == [401, 401, 401]


def test_a_job_loads_an_uploaded_csv_into_sqlite(server, client):
    stored = upload(client, PEOPLE.encode(), path="in/people.csv")
    job = """\
name: people
source: {type: csv, path: in/people.csv}
destination: {type: sqlite, path: people.db, table: people}
mapping:
  columns:
    id: {type: int64}
    name: name
"""

    created = client.post("/api/v1/jobs", json={"job": job})
    finished = wait_for(client, created.json()["id"], ("succeeded", "failed", "partial"))

    assert stored.status_code == 201 and created.status_code == 201, created.text
    assert finished["status"] == "succeeded", finished["error"]
    assert finished["counts"]["inserted"] == 250 and finished["counts"]["rejected"] == 0
    with sqlite3.connect(server.files(server.tenant_id) / "people.db") as db:
        assert db.execute("SELECT count(*), min(name), sum(id) FROM people").fetchone() == (250, "person 1", 31375)
