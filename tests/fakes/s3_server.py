"""S3 for tests: moto's server speaking the real S3 protocol on 127.0.0.1, reached by boto3
through ``AWS_ENDPOINT_URL`` as it would reach AWS.

One server serves the whole test session (it starts in about a second); each test gets a bucket
of its own and the environment boto3 reads (endpoint, dummy credentials, region), set with
``monkeypatch`` so nothing leaks into other tests.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class S3Bucket:
    """A test's own bucket on the session's S3 server, with a boto3 client for checking."""

    name: str
    endpoint_url: str
    client: Any

    def url(self, key: str) -> str:
        return f"s3://{self.name}/{key}"

    def put(self, key: str, data: bytes | str) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=data.encode() if isinstance(data, str) else data)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def keys(self) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def uploads(self) -> list[str]:
        return [u["Key"] for u in self.client.list_multipart_uploads(Bucket=self.name).get("Uploads", [])]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The session's S3 server (moto), as an endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Bucket]:
    """A fresh bucket, and the environment that points boto3 at the server with dummy keys."""
    import boto3

    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "portl-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "portl-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/portl-aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/portl-aws-credentials")
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    name = f"portl-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield S3Bucket(name, s3_endpoint, client)


@pytest.fixture
def s3_url(s3_bucket: S3Bucket) -> str:
    """For the conformance suite: the bucket, the text that stands for ``%(url)s``."""
    return s3_bucket.name
