"""The settings of an Elasticsearch or OpenSearch connection, as a job or a connections file writes them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from portl.connectors.config import ConnectorConfig, Incremental, KeyRule, incremental_problem
from portl.secrets import Secret, mask_url

DEFAULT_URL = "http://127.0.0.1:9200"
CHECKPOINT_INDEX = "portl_checkpoints"


class Config(ConnectorConfig):
    """An Elasticsearch (``type: elasticsearch``) or OpenSearch (``type: opensearch``) index."""

    type: Literal["elasticsearch", "opensearch"]
    hosts: list[str] | None = Field(
        None, description="Node URLs, e.g. [https://es1:9200, https://es2:9200]. Default: http://127.0.0.1:9200.")
    url: str | None = Field(None, description="One node URL instead of `hosts`.")
    index: str = Field(description="Index (or alias) to read or write.")
    api_key: Secret | None = Field(None, description="API key (the encoded id:key form); never printed.")
    username: str | None = Field(None, description="User for basic authentication.")
    password: Secret | None = Field(None, description="Password of `username`; never printed.")
    ca_certs: str | None = Field(None, description="CA certificate file for https (relative to the job file's folder).")
    verify_certs: bool = Field(True, description="Verify the server's TLS certificate.")
    request_timeout: float = Field(30, gt=0, description="Seconds to wait for the answer to one request.")
    action: Literal["index", "create", "upsert"] | None = Field(
        None,
        description="Destinations, modes append and replace: how each document is written. index: a document "
        "with the same _id is replaced; create: such a document is refused (a reject); upsert: its fields are "
        "updated (doc_as_upsert). Default: create into an index Portl created with a key (a key already there is "
        "refused, like a primary key), else index. With mode upsert the conflict strategy decides.")
    chunk_rows: int = Field(1000, ge=1, description="Destinations: at most this many documents in one bulk request.")
    chunk_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Destinations: at most this many bytes in one bulk request.")
    max_retries: int = Field(
        3, ge=0, description="Times a request answered 429 or 5xx (or a document answered 429) is sent again, "
        "with a growing wait, before the batch fails with a retryable error.")
    checkpoint_index: str = Field(
        CHECKPOINT_INDEX, description="Destinations: the index where Portl keeps its checkpoints.")
    query: dict[str, Any] | None = Field(
        None, description="Sources: a query in the search DSL (as a YAML mapping), e.g. {term: {status: open}}.")
    fields: list[str] | None = Field(
        None, description="Sources: read only these fields of each document (its _source filtered), in this order. "
        "Default: every field of the mapping.")
    sort: str | None = Field(
        None, description="Sources: a field with a unique value per document to page on. Default: _shard_doc "
        "(Elasticsearch) or _id (OpenSearch); see the docs for what a resume can rely on with each.")
    keep_alive: str = Field("5m", description="Sources: how long the point in time stays open between two pages.")
    incremental: Incremental | None = Field(
        None, description="Sources: read only the documents whose cursor field (a number or a date) grew since "
        "the job's last finished run.")

    @field_validator("hosts")
    @classmethod
    def _some_hosts(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("hosts lists no node")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.hosts and self.url:
            raise ValueError("give 'hosts' or 'url', not both")
        if self.password is not None and not self.username:
            raise ValueError("'password' needs 'username'")
        if self.api_key is not None and self.username:
            raise ValueError("give 'api_key' or 'username'/'password', not both")
        problem = incremental_problem(self)
        if problem is not None:
            raise KeyRule("incremental", problem.replace("column", "field"))
        for node in self.nodes():
            if not node.startswith(("http://", "https://")):
                raise ValueError(f"node {mask_url(node)!r} must start with http:// or https://")
        return self

    def nodes(self) -> list[str]:
        """The node URLs to connect to."""
        return list(self.hosts or ([self.url] if self.url else [DEFAULT_URL]))

    @property
    def product(self) -> str:
        return "OpenSearch" if self.type == "opensearch" else "Elasticsearch"

    def location(self) -> str:
        """The nodes, credentials masked, for messages."""
        return ", ".join(mask_url(n) for n in self.nodes())

    def describe(self) -> str:
        return f"{self.type} {self.location()} index {self.index}"

    def __repr_args__(self):
        for name, value in super().__repr_args__():
            if name == "url" and value:
                value = mask_url(value)
            elif name == "hosts" and value:
                value = [mask_url(v) for v in value]
            yield name, value
