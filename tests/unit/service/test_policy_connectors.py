"""The connectors that reach cloud services, as a job from the network may use them: files they
read stay in the tenant's folder, endpoints and cluster nodes must be public, and none of them
signs in with the service's own credentials."""

from __future__ import annotations

from portl.service.policy import Allowances, job_problems

SOURCE = "source: {type: csv, path: in.csv}\n"
PUBLIC, PRIVATE = "93.184.216.34", "10.0.0.5"


def messages(text: str, allowed: Allowances = Allowances(), address: str = PUBLIC) -> list[tuple[int | None, str]]:
    return [(p.line, p.message) for p in job_problems(text, allowed, resolve=lambda host: [address])]


def test_a_sheet_with_the_tenants_own_credentials_file_is_allowed():
    text = SOURCE + "destination: {type: gsheet, spreadsheet: abc123, sheet: t, credentials: keys/sa.json}\n"
    assert messages(text) == []


def test_a_sheet_without_credentials_would_use_the_services_google_login_and_is_refused():
    [(line, message)] = messages(SOURCE + "destination: {type: gsheet, spreadsheet: abc123, sheet: t}\n")
    assert line == 2
    assert message.startswith("a gsheet connection without credentials or api_key would use the service's own "
                              "Google credentials")
    assert messages(SOURCE + "destination: {type: gsheet, spreadsheet: abc123, sheet: t}\n",
                    Allowances(code_hooks=True)) == []


def test_a_credentials_file_outside_the_tenants_folder_is_refused_like_any_path():
    text = SOURCE + "destination: {type: gsheet, spreadsheet: abc123, sheet: t, credentials: /etc/portl/google.json}\n"
    [(_line, message)] = messages(text)
    assert message.startswith("'/etc/portl/google.json' is an absolute path")


def test_a_sheets_endpoint_on_a_private_address_is_refused():
    text = SOURCE + ("destination: {type: gsheet, spreadsheet: abc123, sheet: t, credentials: sa.json, "
                     "endpoint: 'http://sheets.internal:8080'}\n")
    [(_line, message)] = messages(text, address=PRIVATE)
    assert "leads to 10.0.0.5 (host 'sheets.internal' resolves to it)" in message


def test_each_node_of_a_search_cluster_is_checked_and_none_means_loopback():
    text = SOURCE + "destination: {type: elasticsearch, hosts: ['https://es1.example.com:9200', 'http://10.1.2.3:9200'], index: people}\n"
    [(_line, message)] = messages(text)
    assert message.startswith("http://10.1.2.3:9200 leads to 10.1.2.3")
    [(_line, message)] = messages(SOURCE + "destination: {type: opensearch, index: people}\n")
    assert message.startswith("an opensearch connection without hosts or url connects to http://127.0.0.1:9200")
    assert messages(SOURCE + "destination: {type: opensearch, index: people}\n", Allowances(private_network=True)) == []


def test_a_search_clusters_ca_file_stays_in_the_tenants_folder():
    text = SOURCE + "destination: {type: elasticsearch, url: 'https://es.example.com', index: p, ca_certs: ../ca.pem}\n"
    [(_line, message)] = messages(text)
    assert message.startswith("'../ca.pem' leads out of the job's files folder")


def test_snowflake_on_its_public_host_with_a_key_file_of_the_tenants_is_allowed():
    text = SOURCE + ("destination: {type: snowflake, account: myorg-acct, user: loader, private_key_file: keys/rsa.p8, "
                     "database: db, table: people}\n")
    assert messages(text) == []


def test_snowflake_on_a_private_host_or_with_a_browser_login_is_refused():
    text = SOURCE + ("destination: {type: snowflake, account: a, user: u, password: p, host: 10.0.0.9, "
                     "database: db, table: people}\n")
    [(_line, message)] = messages(text)
    assert "10.0.0.9" in message and "may not reach" in message
    text = SOURCE + ("destination: {type: snowflake, account: a, user: u, authenticator: externalbrowser, "
                     "database: db, table: people}\n")
    [(_line, message)] = messages(text)
    assert message.startswith("authenticator externalbrowser opens a browser on the machine that runs the job")
