"""The ``http`` and ``lambda`` entries of a flow's ``connections:``: where calls go and how long
they may take. Secrets in them (authorization headers, the AWS secret key) never print."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_serializer, field_validator, model_validator

from portl.connectors.config import ConnectorConfig
from portl.secrets import MASK, Secret, is_sensitive_name, mask_url


class HttpConnection(ConnectorConfig):
    """An HTTP API (``type: http``): a base URL that ``api.call`` steps add their ``path`` to,
    headers sent with every request, a timeout, and the idempotency header's name."""

    type: Literal["http"]
    base_url: str = Field(description="Start of every URL, e.g. https://api.example.com/v1; a step's `path` is added to it.")
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Headers sent with every request, e.g. Authorization: Bearer ${env:API_TOKEN}. Values of "
        "credential-like headers (Authorization, X-Api-Key, ...) are masked in plans, logs and errors.",
    )
    timeout_s: float = Field(10.0, gt=0, description="Seconds to wait for an answer (connect, send and read), per attempt.")
    idempotency_header: str = Field(
        "Idempotency-Key", min_length=1, description="Header that carries each call's idempotency key."
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("base_url must be an http:// or https:// URL with a host, e.g. https://api.example.com")
        return value

    @field_serializer("headers")
    def _dump_masked_headers(self, headers: dict[str, str]) -> dict[str, str]:
        return self.masked_headers()  # dumps feed plans and logs: never the credentials

    @field_serializer("base_url")
    def _dump_masked_url(self, value: str) -> str:
        return mask_url(value)

    def masked_headers(self) -> dict[str, str]:
        """The headers as plans show them: credential-like values masked."""
        return {name: (MASK if is_sensitive_name(name) else value) for name, value in self.headers.items()}

    def describe(self) -> str:
        return f"http {mask_url(self.base_url)}"

    def __repr_args__(self):
        for name, value in super().__repr_args__():
            if name == "headers":
                value = self.masked_headers()
            elif name == "base_url":
                value = mask_url(value)
            yield name, value


class LambdaConnection(ConnectorConfig):
    """AWS Lambda (``type: lambda``), reached through boto3. Without keys, boto3 finds credentials
    as usual (environment, profile, instance role). ``endpoint_url`` points at another
    implementation of the Invoke API, e.g. a local one."""

    type: Literal["lambda"]
    region: str = Field("us-east-1", description="AWS region of the functions.")
    endpoint_url: str | None = Field(None, description="Invoke API endpoint instead of AWS's, e.g. http://127.0.0.1:9001.")
    access_key_id: str | None = Field(None, description="AWS access key id; give it with secret_access_key, or neither.")
    secret_access_key: Secret | None = Field(None, description="AWS secret access key; never printed.")
    timeout_s: float = Field(30.0, gt=0, description="Seconds to wait for a function's answer, per attempt.")

    @field_validator("endpoint_url")
    @classmethod
    def _http_endpoint(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("endpoint_url must be an http:// or https:// URL, e.g. http://127.0.0.1:9001")
        return value

    @field_validator("secret_access_key")
    @classmethod
    def _not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            raise ValueError("secret_access_key is empty (is its environment variable set?)")
        return value

    @model_validator(mode="after")
    def _both_keys_or_neither(self) -> LambdaConnection:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            given, missing = ("access_key_id", "secret_access_key") if self.access_key_id else ("secret_access_key", "access_key_id")
            raise ValueError(f"{given} is given without {missing}; give both, or neither to use the usual AWS credentials")
        return self

    def describe(self) -> str:
        where = mask_url(self.endpoint_url) if self.endpoint_url else f"AWS {self.region}"
        return f"lambda {where}"
