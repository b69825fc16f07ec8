"""The policy for jobs from the network: validation as `portl validate` does it, then what an
untrusted tenant may not do, each refusal located in the job's text."""

from __future__ import annotations

import pytest

from portl.service.policy import Allowances, allowances_of, job_problems

NOTHING = Allowances()
EVERYTHING = Allowances(local_files=True, code_hooks=True, private_network=True)
CSV = "source: {type: csv, path: in.csv}\n"


def names(mapping):
    def resolve(host):
        if host not in mapping:
            raise OSError(f"unknown host {host}")
        return mapping[host]
    return resolve


def messages(text, allowed=NOTHING, **hosts):
    return [(p.line, p.message) for p in job_problems(text, allowed, resolve=names(hosts))]


def test_a_job_within_its_folder_and_public_hosts_has_no_problem():
    text = CSV + "destination: {type: postgres, host: db.example.com, database: crm, table: t}\n"
    assert messages(text, **{"db.example.com": ["93.184.216.34"]}) == []


def test_an_invalid_job_reports_its_validation_problems_only():
    text = "source: {type: csv, path: /etc/passwd, delimeter: x}\ndestination: {type: sqlite, path: o.db, table: t}\n"
    assert messages(text) == [(1, "unknown key 'delimeter' in source; did you mean 'delimiter'?")]


def test_env_references_are_not_filled_from_the_services_environment(monkeypatch):
    monkeypatch.setenv("SERVICE_SECRET", "s3cret")
    text = CSV + "destination: {type: sqlite, path: '${env:SERVICE_SECRET}.db', table: t}\n"
    [(line, message)] = messages(text)
    assert line == 2 and "SERVICE_SECRET" in message and "s3cret" not in message


def test_a_host_name_is_judged_by_the_address_it_resolves_to():
    text = CSV + "destination: {type: postgres, host: innocent.example.com, database: crm, table: t}\n"
    [(line, message)] = messages(text, **{"innocent.example.com": ["10.0.0.7"]})
    assert line == 2
    assert message.startswith("'innocent.example.com' leads to 10.0.0.7 (host 'innocent.example.com' resolves to it), "
                              "a loopback, private or link-local address this tenant may not reach")


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                     "::1", "fe80::1", "0.0.0.0", "100.64.0.1"])
def test_non_public_addresses_are_refused(address):
    url = f"http://[{address}]/hook" if ":" in address else f"http://{address}/hook"
    text = CSV + f"destination: {{type: sqlite, path: o.db, table: t}}\nhooks:\n  after_job: {{type: http, url: '{url}'}}\n"
    [(line, message)] = messages(text)
    assert line == 4 and f"leads to {address}," in message


def test_a_database_without_a_host_means_loopback_and_is_refused():
    text = CSV + "destination: {type: postgres, database: crm, table: t}\n"
    [(line, message)] = messages(text)
    assert line == 2 and message.startswith("a postgres connection without host or url connects to 127.0.0.1")


def test_a_host_that_does_not_resolve_or_is_a_template_is_refused():
    text = CSV + ("destination: {type: sqlite, path: o.db, table: t}\nhooks:\n"
                  "  after_job: {type: http, url: 'https://nowhere.invalid/x'}\n"
                  "  after_batch: {type: http, url: 'https://{{ batch.host }}/x'}\n")
    found = messages(text)
    assert [line for line, _ in found] == [4, 5]
    assert "does not resolve" in found[0][1] and "the host of this URL is a template" in found[1][1]


def test_code_hooks_paths_and_private_hosts_are_accepted_once_allowed():
    text = ("source: {type: csv, path: /data/in.csv}\n"
            "destination: {type: postgres, url: 'postgresql://u:pw@127.0.0.1/crm', table: t}\n"
            "hooks:\n  before_job: {type: script, command: 'echo hi'}\n"
            "rejects: {path: ../rejects.csv}\n")
    assert [line for line, _ in messages(text)] == [1, 2, 4, 5]
    assert messages(text, EVERYTHING) == []
    assert [line for line, _ in messages(text, Allowances(code_hooks=True))] == [1, 2, 5]


def test_a_password_in_a_refused_url_is_masked():
    text = CSV + "destination: {type: postgres, url: 'postgresql://u:hunter2@192.168.0.9/crm', table: t}\n"
    [(_, message)] = messages(text)
    assert "hunter2" not in message and "postgresql://u:**********@192.168.0.9/crm" in message


def test_a_flow_is_checked_too():
    text = """\
version: 2
name: sync
connections:
  api: {type: http, base_url: 'http://10.0.0.5'}
steps:
  - {id: ping, type: api.call, connection: api, method: GET, path: /ping}
"""
    [(line, message)] = messages(text)
    assert line == 4 and "leads to 10.0.0.5" in message


def test_allowances_come_from_tenant_rows_and_callers_alike():
    class Row:
        allow_local_files, allow_code_hooks, allow_private_network = True, False, True

    class Caller:
        local_files, code_hooks, private_network = False, True, False

    assert allowances_of(Row()) == Allowances(True, False, True)
    assert allowances_of(Caller()) == Allowances(False, True, False)


def test_named_connections_from_the_tenants_connections_file_are_checked_too(tmp_path):
    (tmp_path / "connections.yaml").write_text("connections:\n  crm: {type: postgres, url: 'postgresql://u:pw@10.9.8.7/crm'}\n")
    text = CSV + "destination: {connection: crm, table: t}\n"
    [problem] = job_problems(text, NOTHING, files_dir=str(tmp_path), resolve=names({}))
    assert (problem.file, problem.line) == ("connections.yaml", 2)
    assert "leads to 10.9.8.7" in problem.message
    assert job_problems(text, Allowances(private_network=True), files_dir=str(tmp_path)) == []


def test_problems_in_the_tenants_connections_file_name_it_relative_to_the_files_folder(tmp_path):
    (tmp_path / "connections.yaml").write_text("connections:\n  crm: {type: postgres, hots: db.example.com}\n")
    [problem] = job_problems(CSV + "destination: {connection: crm, table: t}\n", NOTHING, files_dir=str(tmp_path))
    assert problem.file == "connections.yaml" and str(tmp_path) not in problem.message


def test_quality_reports_are_written_inside_the_tenants_folder_only():
    text = CSV + ("destination: {type: sqlite, path: o.db, table: t}\n"
                  "quality:\n  - {check: not_null, column: id}\n"
                  "reports: {html: /var/www/report.html, junit: ../junit.xml, json: reports/q.json}\n")
    found = messages(text)
    assert [line for line, _ in found] == [5, 5]
    assert found[0][1].startswith("'/var/www/report.html' is an absolute path")
    assert found[1][1].startswith("'../junit.xml' leads out of the job's files folder")
    assert messages(text, Allowances(local_files=True)) == []
