"""The Lambda functions the example flows call, for running them against a local Invoke API.

``enrich-resource`` (flow_a.yaml) turns a CSV row into a title, a category and the checksum of
its content; ``list-resources`` (flow_b.yaml) answers the resources of one source. Serve them
with the local Lambda server of the test suite, from the repository's root::

    python -m tests.fakes.lambda_server --port 9001 \
        --function enrich-resource=examples.flows.functions:enrich_resource \
        --function list-resources=examples.flows.functions:list_resources
"""

from __future__ import annotations

import hashlib

CATALOG = [
    {"code": "R-101", "source": "feed", "name": "tidal array", "content": "8 turbines, 1.5 MW each"},
    {"code": "R-102", "source": "feed", "name": "heat pump plant", "content": "district heating, 20 MW"},
    {"code": "R-103", "source": "feed", "name": "hydrogen pilot", "content": "electrolyser, 5 MW"},
]


def enrich_resource(event: dict) -> dict:
    """A title, a category and the MD5 of the row's content."""
    content = event.get("content") or ""
    name = (event.get("name") or event.get("code") or "").strip()
    return {
        "title": name.title(),
        "category": "retired" if event.get("source") == "archive" else "active",
        "md5": hashlib.md5(content.encode("utf-8")).hexdigest(),
    }


def list_resources(event: dict) -> dict:
    """The resources of ``event["source"]`` (every one when absent)."""
    source = event.get("source")
    return {"resources": [r for r in CATALOG if source in (None, r["source"])]}
