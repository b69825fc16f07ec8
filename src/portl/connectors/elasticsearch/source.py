"""Reading an Elasticsearch or OpenSearch index page by page, in a point in time.

A point in time (PIT) freezes the index as it was when the read began; pages follow each other
with ``search_after`` on a sort that gives every document one place: ``_shard_doc`` on
Elasticsearch, ``_id`` on OpenSearch (or ``sort:``, a field of the user's with a unique value per
document). The checkpoint after each page holds the last hit's sort values, so a resume asks for
what comes after them.

Within the PIT's life (``keep_alive``, renewed by every page) a resume is exact. A PIT that
expires between two pages (a destination slower than ``keep_alive``) is opened again and the read
goes on after the last page's sort values, as a resume would. A resume after
the PIT expired (a crash, then a resume later) opens a new PIT and continues after the saved sort
values: with ``_id`` or a unique ``sort`` field that is exact for the documents that existed
before and were not changed since; ``_shard_doc`` values belong to the segments of the old PIT,
so after a refresh or merge they may point elsewhere, and a resume of an index that was written
to meanwhile should use a ``sort`` field instead (the plan says which sort is used).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa

from portl.connectors.base import Checkpoint, Chunk, Estimate
from portl.connectors.elasticsearch import typemap
from portl.connectors.elasticsearch.client import SearchClient, _path
from portl.connectors.elasticsearch.config import Config
from portl.connectors.sql.incremental import CursorReads, IncrementalError, Window, window
from portl.errors import SourceError, TerminalError

CURSOR_KINDS = ("int", "bigint", "float", "date", "timestamp", "timestamptz")
"""Cursor types a ``max`` aggregation can give: numbers and dates (not keyword text)."""


class ElasticsearchSource(CursorReads):
    """Reads ``index`` (optionally filtered by ``query``) in pages of ``batch_rows`` documents.

    With ``incremental``, only the documents whose cursor field lies in the run's window
    (:class:`~portl.connectors.sql.incremental.CursorReads`, whose window arithmetic is shared with
    the database sources): a ``range`` filter beside ``query``; the mark is a ``max`` aggregation."""

    def __init__(self, config: Config, base_dir: str):
        if config.action is not None:
            raise TerminalError(f"a {config.type} source takes no 'action' (it is for destinations)")
        self.config = config
        self.client = SearchClient(config, base_dir)
        self.client.check()
        self.index = config.index
        self.name = f"{config.type}:{config.index}"
        self.description = f"{config.type} {config.location()} index {config.index}"
        answer = self.client.request("GET", f"/{_path(self.index)}/_mapping", f"reading the mapping of {self.index}",
                                     missing_ok=True)
        if not answer:
            raise SourceError(f"index {self.index!r} not found on {self.client.where}")
        self._schema = typemap.schema_of(typemap.merged_mappings(answer))
        if config.fields:
            unknown = [f for f in config.fields if f not in self._schema.names]
            if unknown:
                raise SourceError(f"index {self.index} has no field {', '.join(unknown)}; its fields are: "
                                  f"{', '.join(self._schema.names)}")
            self._schema = pa.schema([self._schema.field(f) for f in config.fields])
        if config.sort:
            self.sort: list[Any] = [{config.sort: "asc"}]
        elif self.client.opensearch:
            self.sort = [{"_id": "asc"}]
        else:
            self.sort = [{"_shard_doc": "asc"}]
        self.reopened = 0
        """Points in time that expired during the read and were opened again."""
        self.notes = [f"read in a point in time, {len(self._schema)} fields, sorted on "
                      f"{next(iter(self.sort[0]))} with search_after"]

    def schema(self) -> pa.Schema:
        return self._schema

    def estimate(self) -> Estimate:
        query = self._query()
        answer = self.client.request("POST", f"/{_path(self.index)}/_count", f"counting documents of {self.index}",
                                     body={"query": query} if query else None)
        return Estimate(rows=int(answer.get("count", 0)), exact=True)

    def partitions(self, count: int) -> list[Checkpoint]:
        return [Checkpoint("0", {"after": None})]

    def read(self, batch_rows: int, start: Checkpoint | None) -> Iterator[Chunk]:
        start = start or self.partitions(1)[0]
        if start.done:
            return
        after = start.position.get("after")
        rows_done = start.rows
        keep_alive = self.config.keep_alive
        pit = self.client.open_pit(self.index, keep_alive)
        try:
            while True:
                body: dict[str, Any] = {"size": batch_rows, "sort": self.sort, "track_total_hits": False,
                                        "pit": {"id": pit, "keep_alive": keep_alive}}
                query = self._query()
                if query:
                    body["query"] = query
                if after is not None:
                    body["search_after"] = after
                if self.config.fields:
                    body["_source"] = list(self.config.fields)
                answer = self.client.request("POST", "/_search", f"reading index {self.index}", body=body,
                                             missing_ok=True)
                if answer is None:  # the point in time expired between two pages: go on in a new one
                    pit = self.client.open_pit(self.index, keep_alive)
                    self.reopened += 1
                    continue
                pit = answer.get("pit_id") or pit  # the cluster may hand a new id for the same PIT
                hits = answer.get("hits", {}).get("hits", [])
                if not hits:
                    break
                first = rows_done + 1
                batch, rejects = typemap.to_batch(self._schema, [h.get("_source") or {} for h in hits], self.name,
                                                  first, [h.get("_id", "") for h in hits])
                after = hits[-1].get("sort")
                if after is None:
                    raise TerminalError(f"reading index {self.index}: the cluster gave no sort values to page on")
                rows_done += len(hits)
                yield Chunk(batch, Checkpoint(start.partition, {"after": after}, rows_done), first_record=first,
                            rejects=rejects)
                if len(hits) < batch_rows:
                    break
        finally:
            self.client.close_pit(pit)

    def _query(self) -> dict[str, Any] | None:
        """The user's ``query``, and the incremental window's filter beside it."""
        if self.window is None:
            return self.config.query
        restricted = self._window_query(self.window)
        return {"bool": {"filter": [self.config.query, restricted]}} if self.config.query else restricted

    # --- incremental reads (sql.incremental.CursorReads) ------------------------------------

    def quoted_cursor(self) -> str:
        return self.config.incremental.cursor

    def cursor_kind(self) -> str:
        kind = super().cursor_kind()
        if kind not in CURSOR_KINDS:
            raise IncrementalError("cursor", f"incremental.cursor: field {self.config.incremental.cursor} of "
                                             f"{self.description} is {kind}; a cursor here is a number or a date field")
        return kind

    def cursor_maximum(self) -> Any:
        """The cursor's largest value now, by a ``max`` aggregation (in the user's ``query``)."""
        cursor, kind = self.config.incremental.cursor, self.cursor_kind()
        body: dict[str, Any] = {"size": 0, "track_total_hits": False, "aggs": {"mark": {"max": {"field": cursor}}}}
        if self.config.query:
            body["query"] = self.config.query
        answer = self.client.request("POST", f"/{_path(self.index)}/_search",
                                     f"finding the incremental mark of {self.description}", body=body)
        found = (answer.get("aggregations") or {}).get("mark") or {}
        value, text = found.get("value"), found.get("value_as_string")
        if value is None:
            return None
        if kind in ("int", "bigint"):
            return int(value)
        if kind == "float":
            return float(value)
        moment = (datetime.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else
                  datetime.datetime.fromtimestamp(value / 1000, datetime.timezone.utc))
        if kind == "date":
            return moment.date()
        if kind == "timestamp":
            return moment.replace(tzinfo=None)
        return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)

    def _window_query(self, win: Window) -> dict[str, Any]:
        """The window as a query: a ``range`` on the cursor, and documents without one on a first run."""
        cursor = self.config.incremental.cursor
        missing = {"bool": {"must_not": [{"exists": {"field": cursor}}]}}
        if win.empty:
            return missing if win.nulls else {"bool": {"must_not": [{"match_all": {}}]}}
        bounds: dict[str, Any] = {"lte": _bound(win.upto)}
        if win.after is not None:
            bounds["gt"] = _bound(win.after)
        if win.since is not None:
            bounds["gte"] = _bound(win.since)
        ranged = {"range": {cursor: bounds}}
        return {"bool": {"should": [ranged, missing], "minimum_should_match": 1}} if win.nulls else ranged

    def describe_incremental(self, previous: dict[str, Any] | None, mark: dict[str, Any]) -> list[str]:
        lines = super().describe_incremental(previous, mark)
        shown = window(self.config.incremental, self.cursor_kind(), previous, mark)
        query = json.dumps(self._window_query(shown), default=str)
        return [line for line in lines if not line.startswith("filter: ")] + [f"filter: {query}"]

    def warnings(self) -> list[str]:
        if not self.reopened:
            return []
        return [f"the point in time on index {self.index} expired during the read and was opened again "
                f"({self.reopened} time{'s' if self.reopened > 1 else ''}): documents changed meanwhile were read as "
                "they are now; a longer keep_alive avoids it"]

    def close(self) -> None:
        self.client.close()


def _bound(value: Any) -> Any:
    """A window's bound as a range query takes it: ISO text for dates and times."""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
