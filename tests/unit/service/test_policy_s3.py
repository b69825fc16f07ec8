"""S3 paths from the network: a file connector reading or writing an object signs its requests
with the tenant's own keys, never with the service's credentials or profiles."""

from __future__ import annotations

from portl.service.policy import Allowances, job_problems

DESTINATION = "destination: {type: sqlite, path: o.db, table: t}\n"
KEYS = "aws_access_key_id: AKID, aws_secret_access_key: tenant-secret"


def messages(text: str, allowed: Allowances = Allowances()) -> list[tuple[int | None, str]]:
    return [(p.line, p.message) for p in job_problems(text, allowed, resolve=lambda host: ["93.184.216.34"])]


def test_an_s3_source_with_the_tenants_own_keys_is_allowed():
    assert messages(f"source: {{type: csv, path: 's3://tenant-bucket/in/*.csv', {KEYS}}}\n" + DESTINATION) == []


def test_an_s3_path_without_keys_would_use_the_services_credentials_and_is_refused():
    [(line, message)] = messages("source: {type: csv, path: 's3://tenant-bucket/in.csv'}\n" + DESTINATION)
    assert line == 1
    assert message.startswith("an s3:// path without aws_access_key_id and aws_secret_access_key (or with a profile) "
                              "would use the service's own AWS credentials")


def test_a_profile_is_refused_even_beside_keys():
    text = f"source: {{type: csv, path: 's3://b/in.csv', profile: ops, {KEYS}}}\n" + DESTINATION
    assert len(messages(text)) == 1


def test_a_tenant_trusted_with_code_hooks_may_use_the_services_credentials():
    text = "source: {type: csv, path: 's3://b/in.csv'}\n" + DESTINATION
    assert messages(text, Allowances(code_hooks=True)) == []


def test_an_s3_endpoint_on_a_private_address_is_refused_like_any_url():
    text = f"source: {{type: csv, path: 's3://b/in.csv', endpoint_url: 'http://10.0.0.5:9000', {KEYS}}}\n" + DESTINATION
    [(line, message)] = messages(text)
    assert message.startswith("http://10.0.0.5:9000 leads to 10.0.0.5, a loopback, private or link-local")
