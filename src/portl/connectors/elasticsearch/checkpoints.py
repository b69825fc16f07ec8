"""Portl's checkpoints in a cluster: one document per run and partition in an index of Portl's own
(``checkpoint_index``, default ``portl_checkpoints``).

A bulk request is not a transaction, so a checkpoint cannot commit with its batch; it is written
right after the batch's documents, with ``refresh=wait_for`` so that the next search (a resume, the
engine's look for unfinished runs) sees it. What a crash between the two leaves behind, the
documents of a batch without its checkpoint, is written again by the resume under the same
``_id``\\ s (see :mod:`portl.connectors.elasticsearch.sink`).
"""

from __future__ import annotations

import time
from typing import Any

from portl.connectors.base import Checkpoint, RunCheckpoints, group_checkpoints
from portl.connectors.elasticsearch.client import SearchClient, _path
from portl.errors import TerminalError

MAPPINGS = {
    "dynamic": False,
    "properties": {"run_id": {"type": "keyword"}, "job": {"type": "keyword"}, "target": {"type": "keyword"},
                   "partition": {"type": "keyword"}, "saved_at": {"type": "date", "format": "epoch_millis"},
                   "checkpoint": {"type": "object", "enabled": False}, "state": {"type": "object", "enabled": False}},
}
MOST = 10_000  # checkpoints one search returns: a job's most recent runs


class CheckpointIndex:
    """The checkpoints of the destination ``target`` (an index or alias name) in index ``name``."""

    def __init__(self, client: SearchClient, name: str, target: str):
        self.client, self.name, self.target = client, name, target
        self._ready = False

    def ensure(self) -> None:
        """Create the index when it does not exist yet."""
        if self._ready:
            return
        if self.client.request("GET", f"/{_path(self.name)}/_mapping", f"reading index {self.name}",
                               missing_ok=True) is None:
            try:
                self.client.request("PUT", f"/{_path(self.name)}", f"creating index {self.name}",
                                    body={"mappings": MAPPINGS})
            except TerminalError as exc:  # created by another run meanwhile
                if "already_exists" not in str(exc) and "already exists" not in str(exc):
                    raise
        self._ready = True

    def save(self, run_id: str, checkpoint: Checkpoint, state: dict[str, Any]) -> None:
        self.ensure()
        doc = {"run_id": run_id, "job": state.get("job", ""), "target": self.target,
               "partition": checkpoint.partition, "saved_at": int(time.time() * 1000),
               "checkpoint": checkpoint.to_json(), "state": state}
        doc_id = f"{run_id}:{checkpoint.partition}"
        self.client.request("PUT", f"/{_path(self.name)}/_doc/{_path(doc_id)}",
                            f"saving a checkpoint in index {self.name}", params={"refresh": "wait_for"}, body=doc)

    def of_run(self, run_id: str) -> RunCheckpoints:
        return group_checkpoints(self._found({"term": {"run_id": run_id}})).get(run_id, {})

    def of_job(self, job: str) -> dict[str, RunCheckpoints]:
        query = {"bool": {"filter": [{"term": {"job": job}}, {"term": {"target": self.target}}]}}
        return group_checkpoints(self._found(query))

    def forget(self, run_id: str) -> None:
        self.client.request("POST", f"/{_path(self.name)}/_delete_by_query",
                            f"forgetting run {run_id} in index {self.name}", params={"refresh": "true"},
                            body={"query": {"term": {"run_id": run_id}}}, missing_ok=True)

    def _found(self, query: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """The checkpoints ``query`` finds, the :data:`MOST` saved last (a job's runs, newest first)."""
        answer = self.client.request("POST", f"/{_path(self.name)}/_search",
                                     f"reading checkpoints from index {self.name}",
                                     body={"query": query, "size": MOST, "sort": [{"saved_at": "desc"}]},
                                     missing_ok=True)
        rows = []
        for hit in (answer or {}).get("hits", {}).get("hits", []):
            doc = hit.get("_source") or {}
            rows.append((doc["run_id"], doc["checkpoint"], doc.get("state") or {}))
        return rows
