"""A job file is read once: pipes, FIFOs and standard input (``-``) load like files."""

import io
import os
import threading

from portl.spec.flow import load_flow
from portl.spec.loader import file_version, job_names, load_job, read_job_file

JOB = "source: {type: csv, path: data/in.csv}\ndestination: {type: sqlite, path: out.db, table: people}\n"


class FakeStdin:
    """Standard input holding ``text``; reading it a second time gives nothing, as a pipe would."""

    def __init__(self, text: str):
        self.buffer = io.BytesIO(text.encode("utf-8"))


def test_a_job_from_standard_input_is_relative_to_the_current_directory_and_named_stdin(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", FakeStdin(JOB))

    source = read_job_file("-")
    loaded = load_job(source)

    assert file_version(source) == 1
    assert loaded.name == "stdin"
    assert loaded.path == "<stdin>"
    assert loaded.base_dir == str(tmp_path)
    assert loaded.job.destination.table == "people"


def test_problems_in_a_job_from_standard_input_name_it_stdin(monkeypatch, problems_of):
    monkeypatch.setattr("sys.stdin", FakeStdin("source: {type: csv, path: a.csv}\ndestination: {type: sqlite, path: o.db, tabel: t}\n"))

    problems = problems_of(load_job, read_job_file("-"))

    assert [(p.file, p.line) for p in problems] == [("<stdin>", 2)]
    assert "did you mean 'table'?" in problems[0].message


def test_a_fifo_is_read_once_for_its_version_its_job_names_and_the_job(tmp_path):
    fifo = tmp_path / "job.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_text, args=("jobs:\n  - {name: first, " + JOB.replace("\n", ", ").rstrip(", ") + "}\n",))
    writer.start()

    source = read_job_file(str(fifo))
    writer.join()

    assert file_version(source) == 1
    assert job_names(source) == ["first"]
    assert load_job(source, "first").job.source.path == "data/in.csv"


def test_a_flow_from_standard_input_loads(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", FakeStdin("""version: 2
connections:
  api: {type: http, base_url: "http://127.0.0.1:9"}
steps:
  - {id: ping, type: api.call, connection: api, method: GET, path: /ping}
"""))

    source = read_job_file("-")
    loaded = load_flow(source)

    assert file_version(source) == 2
    assert (loaded.name, loaded.path, loaded.base_dir) == ("stdin", "<stdin>", str(tmp_path))
