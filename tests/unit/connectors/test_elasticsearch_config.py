"""The Elasticsearch / OpenSearch connector without a cluster: its settings, the document ids it
makes, the documents it writes, and its missing-client message."""

from __future__ import annotations

import builtins
import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
from pydantic import ValidationError

from portl.connectors.elasticsearch import Config, open_sink
from portl.connectors.elasticsearch import typemap
from portl.errors import TerminalError
from portl.types import LogicalType, arrow_field


def test_hosts_and_url_are_one_or_the_other():
    with pytest.raises(ValidationError, match="give 'hosts' or 'url', not both"):
        Config(type="elasticsearch", hosts=["http://a:9200"], url="http://b:9200", index="i")


def test_a_node_must_be_an_http_url():
    with pytest.raises(ValidationError, match="must start with http:// or https://"):
        Config(type="opensearch", hosts=["es1:9200"], index="i")


def test_password_needs_a_user_and_api_key_excludes_one():
    with pytest.raises(ValidationError, match="'password' needs 'username'"):
        Config(type="elasticsearch", index="i", password="x")
    with pytest.raises(ValidationError, match="give 'api_key' or 'username'/'password', not both"):
        Config(type="elasticsearch", index="i", username="u", api_key="k")


def test_secrets_never_show_in_the_repr():
    config = Config(type="elasticsearch", url="https://u:hunter2@es:9200", index="i", username="u",
                    password="s3cret", checkpoint_index="cp")
    text = repr(config) + config.describe() + config.location()
    assert "hunter2" not in text and "s3cret" not in text and "s3cret" not in str(config.model_dump())
    keyed = Config(type="elasticsearch", index="i", api_key="c2VjcmV0LWtleQ==")
    assert "c2VjcmV0LWtleQ==" not in repr(keyed) + str(keyed.model_dump())


def test_a_missing_client_names_the_extra_to_install(monkeypatch):
    real_import = builtins.__import__

    def without_clients(name, *args, **kwargs):
        if name.split(".")[0] in ("elasticsearch", "opensearchpy"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_clients)
    with pytest.raises(TerminalError, match=r"pip install 'portl\[elasticsearch\]'"):
        open_sink(Config(type="elasticsearch", index="i"), ".")
    with pytest.raises(TerminalError, match=r"needs opensearch-py: pip install 'portl\[opensearch\]'"):
        open_sink(Config(type="opensearch", index="i"), ".")


def test_a_key_of_one_column_is_its_text_and_of_several_is_joined_unambiguously():
    assert typemap.key_text([42]) == "42"
    assert typemap.key_text([True]) == "true"
    assert typemap.key_text(["north|east", "7"]) == "north\\|east|7"
    assert typemap.key_text(["north", "east|7"]) == "north|east\\|7"
    assert typemap.key_text(["a\\", "b"]) != typemap.key_text(["a", "\\b"])


def test_documents_hold_exact_decimals_iso_times_base64_bytes_and_parsed_json():
    schema = pa.schema([arrow_field("price", LogicalType("decimal", 12, 2)), arrow_field("at", LogicalType("timestamptz")),
                        arrow_field("day", LogicalType("date")), arrow_field("raw", LogicalType("bytes")),
                        arrow_field("doc", LogicalType("json")), arrow_field("x", LogicalType("float"))])
    batch = pa.RecordBatch.from_pylist([
        {"price": Decimal("0.10"), "at": dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc),
         "day": dt.date(1, 1, 1), "raw": b"\x00\xff", "doc": '{"a": [1, null]}', "x": float("nan")}], schema=schema)
    docs, warnings = typemap.documents(batch)
    assert docs == [{"price": "0.10", "at": "2024-01-02T03:04:05.000006Z", "day": "0001-01-01", "raw": "AP8=",
                     "doc": {"a": [1, None]}, "x": None}]
    assert warnings == ["column x: NaN and ±Infinity cannot be stored in a JSON document; they were written as null"]


def test_an_index_portl_did_not_create_is_read_by_its_field_types():
    schema = typemap.schema_of({"properties": {"n": {"type": "long"}, "price": {"type": "scaled_float"},
                                               "when": {"type": "date_nanos"}, "tags": {"type": "keyword"},
                                               "user": {"properties": {"name": {"type": "text"}}},
                                               "big": {"type": "unsigned_long"}}})
    assert [(f.name, str(typemap.logical_of(f))) for f in schema] == [
        ("n", "bigint"), ("price", "float"), ("when", "timestamptz"), ("tags", "text"), ("user", "json"),
        ("big", "decimal(20,0)")]
