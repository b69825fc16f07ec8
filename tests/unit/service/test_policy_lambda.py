"""Lambda hooks from the network: allowed like http hooks (they reach the network and run nothing on
the service's machines), as long as they carry the tenant's own AWS keys; without keys boto3 would
sign with the service's own credentials."""

from __future__ import annotations

from portl.service.policy import Allowances, job_problems

JOB = "source: {type: csv, path: in.csv}\ndestination: {type: sqlite, path: o.db, table: t}\nhooks:\n"
KEYS = "access_key_id: AKID, secret_access_key: tenant-secret"


def messages(text: str, allowed: Allowances = Allowances()) -> list[tuple[int | None, str]]:
    return [(p.line, p.message) for p in job_problems(text, allowed, resolve=lambda host: ["93.184.216.34"])]


def test_a_lambda_hook_with_the_tenants_own_keys_is_allowed_like_an_http_hook():
    assert messages(JOB + f"  before_row: {{type: lambda, function: enrich, region: eu-west-1, {KEYS}}}\n") == []


def test_a_lambda_hook_without_keys_would_use_the_services_credentials_and_is_refused():
    [(line, message)] = messages(JOB + "  after_job: {type: lambda, function: notify}\n")
    assert line == 4
    assert message == ("a lambda call without access_key_id and secret_access_key would use the service's own AWS "
                       "credentials, which this tenant may not; give the tenant's own keys, or ask an admin for "
                       "`portl tenants allow TENANT --code-hooks`")


def test_a_tenant_trusted_with_code_hooks_may_use_the_services_credentials():
    assert messages(JOB + "  after_job: {type: lambda, function: notify}\n", Allowances(code_hooks=True)) == []


def test_a_lambda_endpoint_on_a_private_address_is_refused_like_any_url():
    text = JOB + f"  after_job: {{type: lambda, function: notify, endpoint_url: 'http://10.0.0.5:9001', {KEYS}}}\n"
    [(line, message)] = messages(text)
    assert line == 4 and message.startswith("http://10.0.0.5:9001 leads to 10.0.0.5, a loopback, private or link-local")
    assert messages(text, Allowances(private_network=True)) == []


def test_a_flows_lambda_connection_without_keys_is_refused_the_same_way():
    text = ("version: 2\nname: sync\nconnections:\n  aws: {type: lambda, region: eu-west-1}\n"
            "steps:\n  - {id: enrich, type: lambda.invoke, connection: aws, function: enrich, payload: {a: 1}}\n")
    [(line, message)] = messages(text)
    assert line == 4 and message.startswith("a lambda call without access_key_id and secret_access_key")
    assert messages(text.replace("region: eu-west-1", f"region: eu-west-1, {KEYS}")) == []
