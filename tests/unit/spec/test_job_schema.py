"""The JSON Schema that `portl schema` exports."""

from portl.spec.loader import job_json_schema


def test_schema_accepts_a_single_job_or_a_jobs_file():
    schema = job_json_schema()

    assert schema["anyOf"] == [{"$ref": "#/$defs/Job"}, {"$ref": "#/$defs/JobsFile"}]
    assert schema["$defs"]["Job"]["required"] == ["source", "destination"]
    assert schema["$defs"]["JobsFile"]["required"] == ["jobs"]


def test_source_may_be_a_connector_or_a_connection_reference():
    source = job_json_schema()["$defs"]["Job"]["properties"]["source"]

    assert source["anyOf"] == [{"$ref": "#/$defs/Connector"}, {"$ref": "#/$defs/ConnectionRef"}]


def test_connector_union_is_told_apart_by_type():
    connector = job_json_schema()["$defs"]["Connector"]

    assert connector["discriminator"]["propertyName"] == "type"
    assert {"csv", "tsv", "sqlite"} <= set(connector["discriminator"]["mapping"])


def test_field_aliases_appear_as_written_in_yaml():
    defs = job_json_schema()["$defs"]

    assert "from" in defs["ColumnSpec"]["properties"]
    assert "schema" in defs["Validation"]["properties"]


def test_every_reference_resolves():
    schema = job_json_schema()
    refs = set()

    def collect(node):
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"].rsplit("/", 1)[-1])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(schema)
    assert refs <= set(schema["$defs"])
