"""The JSON Schema of job files, for ``portl schema`` and editors.

It is :func:`~portl.spec.models.job_model`'s schema, widened to what the loader accepts on top of
the model: a source or destination may name a connection (``source: warehouse`` or
``{connection: warehouse, table: t}``), and a file may hold several named jobs under ``jobs:``.
"""

from __future__ import annotations

import copy
from typing import Any

from portl.spec.models import job_model

_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def job_json_schema() -> dict[str, Any]:
    """The JSON Schema of a job file (a single job, or ``jobs:`` with shared ``connections:``)."""
    job = copy.deepcopy(job_model().model_json_schema(by_alias=True))
    defs = job.pop("$defs", {})
    connector = {k: v for k, v in job["properties"]["source"].items() if k not in ("description", "title")}
    defs["Connector"] = connector
    defs["ConnectionRef"] = {
        "anyOf": [
            {"type": "string", "description": "The name of a connection."},
            {
                "type": "object",
                "description": "A named connection, with keys that override or extend its settings.",
                "properties": {"connection": {"type": "string", "description": "The connection's name."}},
                "required": ["connection"],
                "additionalProperties": True,
            },
        ]
    }
    for key in ("source", "destination"):
        prop = job["properties"][key]
        job["properties"][key] = {
            "description": prop.get("description", ""),
            "anyOf": [{"$ref": "#/$defs/Connector"}, {"$ref": "#/$defs/ConnectionRef"}],
        }
    job["properties"]["connections"]["additionalProperties"] = {"$ref": "#/$defs/Connector"}
    job["title"] = "Job"
    defs["Job"] = job
    defs["JobsFile"] = {
        "type": "object",
        "title": "JobsFile",
        "description": "Several jobs in one file; run one with --job NAME.",
        "properties": {
            "version": {"const": 1, "description": "Job language version; may be omitted."},
            "connections": {
                "type": "object",
                "description": "Named connections shared by the jobs of this file.",
                "additionalProperties": {"$ref": "#/$defs/Connector"},
            },
            "jobs": {
                "type": "array",
                "minItems": 1,
                "items": {"allOf": [{"$ref": "#/$defs/Job"}, {"required": ["name"]}]},
            },
        },
        "required": ["jobs"],
        "additionalProperties": False,
    }
    return {
        "$schema": _DIALECT,
        "title": "Portl job file",
        "anyOf": [{"$ref": "#/$defs/Job"}, {"$ref": "#/$defs/JobsFile"}],
        "$defs": defs,
    }
