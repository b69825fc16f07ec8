"""A tenant's files folder: which names are refused and why, uploads put in place whole, listing
and deleting."""

from __future__ import annotations

import hashlib
import os

import pytest

from portl.errors import ConfigError, ServiceError
from portl.service.filestore import (DEFAULT_MAX_UPLOAD_BYTES, PartialUpload, checked_name, delete_file, list_files,
                                     located, max_upload_bytes)


@pytest.mark.parametrize(("name", "says"), [
    ("", "the file's path is empty"),
    ("/etc/passwd", "is absolute"),
    ("~/people.csv", "is absolute"),
    ("C:/data/people.csv", "is absolute"),
    ("../people.csv", "climbs out of your files folder with '..'"),
    ("crm/../../people.csv", "climbs out of your files folder with '..'"),
    (".env", "has a hidden name, '.env'"),
    ("crm/.git/config", "has a hidden name, '.git'"),
    ("crm//people.csv", "has an empty folder name"),
    ("crm/", "has an empty folder name"),
    ("crm\\people.csv", "holds a backslash or a control character"),
    ("people\x00.csv", "holds a backslash or a control character"),
    (" people.csv", "has a name starting or ending with a space"),
    ("a" * 256, "has a name of 256 characters; at most 255"),
    ("a/" * 600 + "b", "is 1,201 characters long; at most 1,024"),
])
def test_a_refused_name_says_what_is_wrong(name, says):
    with pytest.raises(ConfigError) as refused:
        checked_name(name)

    assert says in str(refused.value)


def test_a_name_with_folders_is_kept_as_given():
    assert str(checked_name("crm/2026/people v2.csv")) == "crm/2026/people v2.csv"


def test_a_symbolic_link_out_of_the_folder_is_refused(tmp_path):
    folder, outside = tmp_path / "files", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (folder / "shared").symlink_to(outside)

    with pytest.raises(ConfigError, match="leads out of your files folder through a symbolic link"):
        located(folder, "shared/people.csv")


def test_an_upload_is_hidden_until_stored_then_in_place_with_its_size_and_hash(tmp_path):
    upload = PartialUpload(tmp_path)
    upload.write(b"id,name\n")
    upload.write(b"1,Ada\n")

    assert list_files(tmp_path) == []
    stored = upload.store("crm/people.csv")

    assert (stored.path, stored.size) == ("crm/people.csv", 14)
    assert stored.sha256 == hashlib.sha256(b"id,name\n1,Ada\n").hexdigest()
    assert (tmp_path / "crm" / "people.csv").read_bytes() == b"id,name\n1,Ada\n"
    assert [f.path for f in list_files(tmp_path)] == ["crm/people.csv"]
    assert sorted(os.listdir(tmp_path)) == ["crm"]  # the partial file is gone


def test_a_refused_name_leaves_nothing_behind(tmp_path):
    upload = PartialUpload(tmp_path)
    upload.write(b"x")

    with pytest.raises(ConfigError):
        upload.store("../x")

    assert os.listdir(tmp_path) == []


def test_a_file_where_a_folder_should_be_is_a_collision(tmp_path):
    (tmp_path / "crm").write_text("a file")
    upload = PartialUpload(tmp_path)

    with pytest.raises(ServiceError, match="cannot store 'crm/people.csv': crm is a file, not a folder"):
        upload.store("crm/people.csv")

    assert os.listdir(tmp_path) == ["crm"]


def test_deleting_a_file_removes_the_folders_it_leaves_empty(tmp_path):
    (tmp_path / "crm" / "2026").mkdir(parents=True)
    (tmp_path / "crm" / "2026" / "people.csv").write_text("x")
    (tmp_path / "keep.csv").write_text("x")

    delete_file(tmp_path, "crm/2026/people.csv")

    assert os.listdir(tmp_path) == ["keep.csv"]
    with pytest.raises(FileNotFoundError):
        delete_file(tmp_path, "crm/2026/people.csv")


def test_listing_leaves_out_hidden_files_and_symbolic_links(tmp_path):
    (tmp_path / "people.csv").write_text("abc")
    (tmp_path / ".upload-1.part").write_text("partial")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.csv").write_text("x")
    (tmp_path / "link.csv").symlink_to(tmp_path / "people.csv")

    assert [(f.path, f.size) for f in list_files(tmp_path)] == [("people.csv", 3)]


def test_the_upload_limit_is_5_gib_unless_set():
    assert max_upload_bytes({}) == DEFAULT_MAX_UPLOAD_BYTES == 5 * 1024**3
    assert max_upload_bytes({"PORTL_MAX_UPLOAD_BYTES": "1000"}) == 1000
    with pytest.raises(ServiceError, match="PORTL_MAX_UPLOAD_BYTES='5G' is not a number of bytes"):
        max_upload_bytes({"PORTL_MAX_UPLOAD_BYTES": "5G"})
