"""A local stand-in for an Elasticsearch or OpenSearch cluster, in memory: NOT a real server.

No Elasticsearch or OpenSearch server can run on the test machines, so the connector's tests
drive the real ``elasticsearch`` and ``opensearch-py`` clients against this HTTP server, which
answers the few endpoints Portl uses with the JSON the real ones document:

- ``GET /`` (with ``X-Elastic-Product: Elasticsearch`` on every answer in Elasticsearch flavour,
  which the official client checks; 403 with ``greeting_forbidden``, as for a user without the
  cluster's monitor privilege); credentials checked when the server is given some;
- indices: ``PUT /i`` (with mappings), ``GET /i/_mapping``, ``PUT /i/_mapping``, ``DELETE /i``,
  ``POST /i/_refresh``, ``POST /i/_count``, ``POST /i/_mget``, ``PUT|GET|DELETE /i/_doc/id``,
  ``POST /i/_search``, ``POST /i/_delete_by_query``; aliases: ``GET /_alias/a``, ``POST /_aliases``
  (add, remove, remove_index, atomically);
- ``POST /_bulk`` (NDJSON: index, create, update with ``doc_as_upsert``, delete) with a result
  per item; a value that does not fit its field's mapping is refused as ``mapper_parsing_exception``,
  a ``create`` of an existing ``_id`` as ``version_conflict_engine_exception``; unknown fields are
  mapped dynamically;
- points in time: ``POST /i/_pit`` + ``DELETE /_pit`` (Elasticsearch), ``POST
  /i/_search/point_in_time`` + ``DELETE /_search/point_in_time`` (OpenSearch); ``POST /_search``
  with ``pit``, ``sort`` (``_shard_doc``, ``_id`` or a field) and ``search_after``.

Queries understood: match_all, term, terms, ids, range, exists and bool (must, filter, must_not,
should); aggregations: max.
Tests can inject failures: ``refuse(id, reason)`` refuses a document, ``throttle_items(n)``
answers the next n bulk items 429, ``throttle_requests(n)`` the next n bulk requests 429,
``fail_next(method, path, status)`` the next such request with that status; and
read what was asked: ``bulk_requests`` (documents and bytes of each), ``requests`` (method, path).
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import itertools
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.serving import FakeServer, Handler, serve_main


@dataclass
class Index:
    mappings: dict[str, Any]
    docs: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    aliases: set[str] = field(default_factory=set)


class Problem(Exception):
    def __init__(self, status: int, kind: str, reason: str):
        super().__init__(reason)
        self.status, self.kind, self.reason = status, kind, reason

    def body(self) -> dict[str, Any]:
        cause = {"type": self.kind, "reason": self.reason}
        return {"error": {"root_cause": [cause], **cause}, "status": self.status}


class SearchHandler(Handler):
    def do_GET(self) -> None:
        self.app.handle(self, "GET")

    def do_HEAD(self) -> None:
        self.app.handle(self, "HEAD")

    def do_PUT(self) -> None:
        self.app.handle(self, "PUT")

    def do_POST(self) -> None:
        self.app.handle(self, "POST")

    def do_DELETE(self) -> None:
        self.app.handle(self, "DELETE")


class SearchServer(FakeServer):
    """An in-memory cluster. ``flavor`` is ``elasticsearch`` or ``opensearch``; with ``username``
    (and ``password``) or ``api_key``, requests without them are answered 401."""

    handler = SearchHandler

    def __init__(self, flavor: str = "elasticsearch", *, username: str | None = None, password: str = "",
                 api_key: str | None = None, greeting_forbidden: bool = False, **kwargs: Any):
        self.flavor = flavor
        self.greeting_forbidden = greeting_forbidden  # a user without the cluster's monitor privilege
        self.credentials = {f"Basic {base64.b64encode(f'{username}:{password}'.encode()).decode()}"} if username else set()
        if api_key:
            self.credentials.add(f"ApiKey {api_key}")
        self.lock = threading.RLock()
        self.indices: dict[str, Index] = {}
        self.pits: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.bulk_requests: list[tuple[int, int]] = []
        self.refusals: dict[str, tuple[str, str]] = {}
        self.items_to_throttle = 0
        self.requests_to_throttle = 0
        self.failures: list[list[Any]] = []
        self._seq = itertools.count(1)
        super().__init__(**kwargs)

    # --- failures a test injects ---------------------------------------------------------

    def refuse(self, doc_id: str, reason: str, kind: str = "mapper_parsing_exception") -> None:
        self.refusals[doc_id] = (kind, reason)

    def throttle_items(self, count: int) -> None:
        self.items_to_throttle = count

    def throttle_requests(self, count: int) -> None:
        self.requests_to_throttle = count

    def fail_next(self, method: str, path_prefix: str, status: int = 500, count: int = 1) -> None:
        """Answer the next ``count`` requests of ``method`` (``*``: any) whose path starts with ``path_prefix``
        with ``status``, without doing them (a node that fails before it acts)."""
        self.failures.append([method, path_prefix, status, count])

    def documents(self, name: str) -> dict[str, dict[str, Any]]:
        """The documents of an index (or of the index an alias points to), by ``_id``."""
        with self.lock:
            return {k: copy.deepcopy(v) for k, (_, v) in self.indices[self._one(name)].docs.items()}

    # --- dispatch ------------------------------------------------------------------------

    def handle(self, h: Handler, method: str) -> None:
        parts = urlsplit(h.path)
        path = [unquote(p) for p in parts.path.split("/") if p]
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        raw = h.read_body()
        headers = {"X-Elastic-Product": "Elasticsearch"} if self.flavor == "elasticsearch" else {}
        with self.lock:
            self.requests.append((method, parts.path))
        if self.credentials and h.headers.get("Authorization") not in self.credentials:
            problem = Problem(401, "security_exception", "unable to authenticate user for REST request [/]")
            h.answer_json(401, problem.body(), {"WWW-Authenticate": 'Basic realm="security"'})
            return
        try:
            with self.lock:
                self._injected_failure(method, parts.path)
                status, body = self.route(method, path, params, raw)
        except Problem as problem:
            status, body = problem.status, problem.body()
        if method == "HEAD":
            h.answer(status, b"", headers)
        else:
            h.answer_json(status, body, headers)

    def _injected_failure(self, method: str, path: str) -> None:
        for failure in self.failures:
            wanted, prefix, status, count = failure
            if count > 0 and wanted in (method, "*") and path.startswith(prefix):
                failure[3] -= 1
                raise Problem(status, "node_failure_exception" if status >= 500 else "illegal_state_exception",
                              f"injected failure of {method} {path}")

    def route(self, method: str, path: list[str], params: dict[str, str], raw: bytes) -> tuple[int, Any]:
        body = json.loads(raw) if raw and not (path and path[-1] == "_bulk") else None
        if not path:
            if self.greeting_forbidden:
                raise Problem(403, "security_exception", "action [cluster:monitor/main] is unauthorized for user [loader]")
            return 200, self._greeting()
        head, rest = path[0], path[1:]
        if head == "_bulk":
            return self._bulk(raw, None)
        if head == "_aliases":
            return self._update_aliases(body["actions"])
        if head == "_alias":
            return self._get_alias(rest[0])
        if head == "_search" and rest == ["point_in_time"] and method == "DELETE":
            for pit in body.get("pit_id", []):
                self.pits.pop(pit, None)
            return 200, {"pits": [{"pit_id": p, "successful": True} for p in body.get("pit_id", [])]}
        if head == "_pit" and method == "DELETE":
            found = self.pits.pop(body.get("id"), None)
            return (200 if found else 404), {"succeeded": bool(found), "num_freed": int(bool(found))}
        if head == "_search":
            return self._search(None, body or {})
        name = head
        if not rest:
            if method == "PUT":
                return self._create(name, body or {})
            if method == "DELETE":
                return self._delete_index(name)
            if method in ("GET", "HEAD"):
                return 200, {self._one(name): {"mappings": self.indices[self._one(name)].mappings}}
        action = rest[0]
        if action == "_mapping":
            if method == "GET":
                return 200, {n: {"mappings": copy.deepcopy(self.indices[n].mappings)} for n in self._resolve(name)}
            index = self.indices[self._one(name)]
            index.mappings.setdefault("properties", {}).update(body.get("properties") or {})
            if body.get("_meta"):
                index.mappings["_meta"] = body["_meta"]
            return 200, {"acknowledged": True}
        if action == "_bulk":
            return self._bulk(raw, name)
        if action == "_refresh":
            self._resolve(name)
            return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
        if action == "_count":
            docs = self._matching(name, (body or {}).get("query"))
            return 200, {"count": len(docs)}
        if action == "_mget":
            index = self.indices[self._one(name)]
            return 200, {"docs": [{"_index": self._one(name), "_id": i, "found": i in index.docs,
                                   **({"_source": copy.deepcopy(index.docs[i][1])} if i in index.docs else {})}
                                  for i in body.get("ids", [])]}
        if action == "_doc":
            return self._doc(method, name, rest[1] if len(rest) > 1 else None, body)
        if action == "_search" and rest[1:] == ["point_in_time"]:
            return 200, {"pit_id": self._open_pit(name, params), "_shards": {"total": 1, "successful": 1}}
        if action == "_pit":
            return 200, {"id": self._open_pit(name, params)}
        if action == "_search":
            return self._search(name, body or {})
        if action == "_delete_by_query":
            if not self._resolve(name, missing_ok=True):
                raise Problem(404, "index_not_found_exception", f"no such index [{name}]")
            index = self.indices[self._one(name)]
            doomed = [i for i, (_, doc) in index.docs.items() if _matches(doc, i, body.get("query"))]
            for i in doomed:
                del index.docs[i]
            return 200, {"deleted": len(doomed), "failures": []}
        raise Problem(400, "illegal_argument_exception", f"no handler for [{method} /{'/'.join([name, *rest])}]")

    def _greeting(self) -> dict[str, Any]:
        if self.flavor == "opensearch":
            version = {"distribution": "opensearch", "number": "2.17.0", "lucene_version": "9.11.1"}
        else:
            version = {"number": "9.1.0", "build_flavor": "default", "lucene_version": "10.2.2"}
        return {"name": "fake-node", "cluster_name": "fake", "cluster_uuid": "fake", "version": version,
                "tagline": "You Know, for Search" if self.flavor == "elasticsearch" else "The OpenSearch Project"}

    # --- indices and aliases -------------------------------------------------------------

    def _resolve(self, name: str, missing_ok: bool = False) -> list[str]:
        if name in self.indices:
            return [name]
        found = sorted(n for n, i in self.indices.items() if name in i.aliases)
        if not found and not missing_ok:
            raise Problem(404, "index_not_found_exception", f"no such index [{name}]")
        return found

    def _one(self, name: str) -> str:
        found = self._resolve(name)
        if len(found) > 1:
            raise Problem(400, "illegal_argument_exception", f"alias [{name}] has more than one index")
        return found[0]

    def _create(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        if name in self.indices or self._resolve(name, missing_ok=True):
            raise Problem(400, "resource_already_exists_exception", f"index [{name}] already exists")
        mappings = copy.deepcopy(body.get("mappings") or {})
        mappings.setdefault("properties", {})
        self.indices[name] = Index(mappings)
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def _delete_index(self, name: str) -> tuple[int, Any]:
        if name not in self.indices:
            raise Problem(404, "index_not_found_exception", f"no such index [{name}]")
        del self.indices[name]
        return 200, {"acknowledged": True}

    def _get_alias(self, alias: str) -> tuple[int, Any]:
        found = {n: {"aliases": {alias: {}}} for n, i in self.indices.items() if alias in i.aliases}
        if not found:
            return 404, {"error": f"alias [{alias}] missing", "status": 404}
        return 200, found

    def _update_aliases(self, actions: list[dict[str, Any]]) -> tuple[int, Any]:
        indices = copy.deepcopy(self.indices)
        for action in actions:
            (kind, spec), = action.items()
            name = spec.get("index")
            if kind == "remove_index":
                if name not in indices:
                    raise Problem(404, "index_not_found_exception", f"no such index [{name}]")
                del indices[name]
            elif kind in ("add", "remove"):
                if name not in indices:
                    raise Problem(404, "index_not_found_exception", f"no such index [{name}]")
                if kind == "add":
                    indices[name].aliases.add(spec["alias"])
                elif spec["alias"] in indices[name].aliases:
                    indices[name].aliases.discard(spec["alias"])
                else:
                    raise Problem(404, "aliases_not_found_exception", f"aliases [{spec['alias']}] missing")
        for name, index in indices.items():
            if name in {a for i in indices.values() for a in i.aliases}:
                raise Problem(400, "invalid_alias_name_exception", f"an index exists with the same name as the alias [{name}]")
        self.indices = indices
        return 200, {"acknowledged": True}

    # --- documents -----------------------------------------------------------------------

    def _doc(self, method: str, name: str, doc_id: str | None, body: Any) -> tuple[int, Any]:
        if method in ("PUT", "POST"):
            if not self._resolve(name, missing_ok=True):
                self._create(name, {})
            index = self.indices[self._one(name)]
            doc_id = doc_id or uuid.uuid4().hex
            created = doc_id not in index.docs
            self._check(index, doc_id, body)
            index.docs[doc_id] = (next(self._seq), copy.deepcopy(body))
            return (201 if created else 200), {"_id": doc_id, "result": "created" if created else "updated"}
        index = self.indices[self._one(name)]
        if doc_id not in index.docs:
            return 404, {"_id": doc_id, "found": False}
        if method == "DELETE":
            del index.docs[doc_id]
            return 200, {"_id": doc_id, "result": "deleted"}
        return 200, {"_id": doc_id, "found": True, "_source": copy.deepcopy(index.docs[doc_id][1])}

    def _bulk(self, raw: bytes, default_index: str | None) -> tuple[int, Any]:
        lines = [line for line in raw.split(b"\n") if line.strip()]
        if self.requests_to_throttle:
            self.requests_to_throttle -= 1
            raise Problem(429, "es_rejected_execution_exception", "rejected execution of bulk request (queue full)")
        items, at, count = [], 0, 0
        while at < len(lines):
            (op, meta), = json.loads(lines[at]).items()
            source = json.loads(lines[at + 1]) if op != "delete" else None
            at += 1 if op == "delete" else 2
            count += 1
            items.append({op: self._item(op, meta, source, default_index)})
        self.bulk_requests.append((count, len(raw)))
        return 200, {"took": 1, "errors": any("error" in next(iter(i.values())) for i in items), "items": items}

    def _item(self, op: str, meta: dict[str, Any], source: Any, default_index: str | None) -> dict[str, Any]:
        name = meta.get("_index") or default_index
        doc_id = meta.get("_id") or uuid.uuid4().hex
        head = {"_index": name, "_id": doc_id}
        if self.items_to_throttle:
            self.items_to_throttle -= 1
            return {**head, "status": 429, "error": {"type": "es_rejected_execution_exception",
                                                     "reason": "rejected execution (queue full)"}}
        try:
            if not self._resolve(name, missing_ok=True):
                self._create(name, {})
            real = self._one(name)
            index = self.indices[real]
            head["_index"] = real
            if doc_id in self.refusals:
                kind, reason = self.refusals[doc_id]
                raise Problem(400, kind, reason)
            exists = doc_id in index.docs
            if op == "delete":
                if not exists:
                    return {**head, "status": 404, "result": "not_found"}
                del index.docs[doc_id]
                return {**head, "status": 200, "result": "deleted"}
            if op == "create" and exists:
                raise Problem(409, "version_conflict_engine_exception",
                              f"[{doc_id}]: version conflict, document already exists (current version [1])")
            if op == "update":
                partial = source.get("doc") or {}
                if not exists and not source.get("doc_as_upsert"):
                    raise Problem(404, "document_missing_exception", f"[{doc_id}]: document missing")
                merged = {**(index.docs[doc_id][1] if exists else {}), **partial}
                if exists and merged == index.docs[doc_id][1]:
                    return {**head, "status": 200, "result": "noop"}
                source = merged
            self._check(index, doc_id, source)
            index.docs[doc_id] = (index.docs[doc_id][0] if exists else next(self._seq), source)  # parsed for it alone
            return {**head, "status": 200 if exists else 201, "result": "updated" if exists else "created",
                    "_version": 1}
        except Problem as problem:
            return {**head, "status": problem.status, "error": {"type": problem.kind, "reason": problem.reason}}

    def _check(self, index: Index, doc_id: str, source: dict[str, Any]) -> None:
        """Refuse a value its field's mapping cannot parse; map unknown fields dynamically."""
        properties = index.mappings.setdefault("properties", {})
        for name, value in source.items():
            mapping = properties.get(name)
            if mapping is None:
                if value is not None:
                    properties[name] = _dynamic(value)
                continue
            kind = mapping.get("type", "object")
            if value is None or (kind == "object" and mapping.get("enabled") is False):
                continue
            if not _fits(kind, value, mapping):
                preview = value if isinstance(value, str) else json.dumps(value)
                raise Problem(400, "document_parsing_exception" if self.flavor == "elasticsearch" else "mapper_parsing_exception",
                              f"[1:2] failed to parse field [{name}] of type [{kind}] in document with id '{doc_id}'. "
                              f"Preview of field's value: '{preview}'")

    # --- searching -----------------------------------------------------------------------

    def _matching(self, name: str, query: Any) -> list[tuple[str, int, dict[str, Any]]]:
        found = []
        for real in self._resolve(name):
            for doc_id, (seq, doc) in self.indices[real].docs.items():
                if _matches(doc, doc_id, query):
                    found.append((doc_id, seq, doc))
        return found

    def _open_pit(self, name: str, params: dict[str, str]) -> str:
        pit = base64.b64encode(uuid.uuid4().bytes).decode()
        self.pits[pit] = {"docs": copy.deepcopy(self._matching(name, None)), "index": self._one(name)}
        return pit

    def _search(self, name: str | None, body: dict[str, Any]) -> tuple[int, Any]:
        pit = body.get("pit")
        if pit is not None:
            if name is not None:
                raise Problem(400, "action_request_validation_exception", "[indices] cannot be used with point in time")
            held = self.pits.get(pit["id"])
            if held is None:
                raise Problem(404, "search_context_missing_exception", "No search context found for id")
            docs = [d for d in held["docs"] if _matches(d[2], d[0], body.get("query"))]
            index = held["index"]
        else:
            docs, index = self._matching(name or "*", body.get("query")), name
        sort = body.get("sort") or [{"_doc": "asc"}]
        (field_name, order), = (sort[0].items() if isinstance(sort[0], dict) else [(sort[0], "asc")])

        def key(d: tuple[str, int, dict[str, Any]]) -> list[Any]:
            if field_name in ("_shard_doc", "_doc"):
                return [d[1]]
            if field_name == "_id":
                return [d[0]]
            return [d[2].get(field_name)]

        docs = sorted(docs, key=key, reverse=isinstance(order, str) and order == "desc")
        after = body.get("search_after")
        if after is not None:
            docs = [d for d in docs if key(d) > list(after)]
        size = int(body.get("size", 10))
        aggregations = {name: _aggregate(spec, [d[2] for d in docs]) for name, spec in (body.get("aggs") or {}).items()}
        wanted = body.get("_source")
        hits = [{"_index": index, "_id": d[0], "_score": None, "sort": key(d),
                 "_source": copy.deepcopy({k: v for k, v in d[2].items() if k in wanted} if isinstance(wanted, list) else d[2])}
                for d in docs[:size]]
        answer: dict[str, Any] = {"took": 1, "timed_out": False, "hits": {"hits": hits}}
        if aggregations:
            answer["aggregations"] = aggregations
        if pit is not None:
            answer["pit_id"] = pit["id"]
        return 200, answer


def _dynamic(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "long"}
    if isinstance(value, float):
        return {"type": "float"}
    if isinstance(value, dict):
        return {"type": "object"}
    return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}


def _fits(kind: str, value: Any, mapping: dict[str, Any]) -> bool:
    values = value if isinstance(value, list) else [value]
    return all(_fits_one(kind, v, mapping) for v in values if v is not None)


def _fits_one(kind: str, value: Any, mapping: dict[str, Any]) -> bool:
    if kind in ("integer", "long", "short", "byte"):
        limit = 2**31 if kind == "integer" else 2**63
        try:
            number = int(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else None
        except ValueError:
            return False
        return number is not None and -limit <= number < limit
    if kind in ("double", "float", "half_float", "scaled_float"):
        try:
            return not isinstance(value, bool) and float(value) == float(value)
        except (TypeError, ValueError):
            return False
    if kind == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if kind == "date":
        return _is_date(value, mapping.get("format", ""))
    if kind == "binary":
        try:
            base64.b64decode(value, validate=True)
            return True
        except (binascii.Error, TypeError, ValueError):
            return False
    if kind in ("keyword", "text"):
        return not isinstance(value, dict)
    return True


def _is_date(value: Any, fmt: str) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return "epoch_millis" in fmt or not fmt
    if not isinstance(value, str):
        return False
    try:
        if fmt == "yyyy-MM-dd":
            dt.date.fromisoformat(value)
        else:
            dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True
    except ValueError:
        return False


def _value(doc: dict[str, Any], name: str) -> Any:
    return doc.get(name.removesuffix(".keyword"))


def _matches(doc: dict[str, Any], doc_id: str, query: Any) -> bool:
    if not query:
        return True
    (kind, spec), = query.items()
    if kind == "match_all":
        return True
    if kind == "ids":
        return doc_id in spec.get("values", [])
    if kind == "term":
        (name, wanted), = spec.items()
        wanted = wanted.get("value") if isinstance(wanted, dict) else wanted
        return (doc_id if name == "_id" else _value(doc, name)) == wanted
    if kind == "terms":
        (name, wanted), = spec.items()
        return _value(doc, name) in wanted
    if kind == "exists":
        return _value(doc, spec["field"]) is not None
    if kind == "range":
        (name, bounds), = spec.items()
        value = _value(doc, name)
        if value is None:
            return False
        tests: dict[str, Callable[[Any, Any], bool]] = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
                                                          "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}
        return all(tests[op](_comparable(value), _comparable(bound)) for op, bound in bounds.items() if op in tests)
    if kind == "bool":
        def listed(part: str) -> list[Any]:
            found = spec.get(part) or []
            return found if isinstance(found, list) else [found]

        should = listed("should")
        wanted = int(spec.get("minimum_should_match", 0 if listed("must") + listed("filter") else 1)) if should else 0
        return (all(_matches(doc, doc_id, q) for q in listed("must") + listed("filter"))
                and not any(_matches(doc, doc_id, q) for q in listed("must_not"))
                and sum(_matches(doc, doc_id, q) for q in should) >= wanted)
    raise Problem(400, "parsing_exception", f"unknown query [{kind}]")


def _comparable(value: Any) -> Any:
    """Dates as instants (a date field compares ``…Z`` and ``…+00:00`` alike), other values as they are."""
    if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-" and value[7:8] == "-":
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
    return value


def _aggregate(spec: dict[str, Any], docs: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``max`` aggregation: a date field's value in epoch milliseconds, with its ISO text."""
    (kind, options), = spec.items()
    if kind != "max":
        raise Problem(400, "parsing_exception", f"unknown aggregation [{kind}]")
    values = [_comparable(d.get(options["field"])) for d in docs if d.get(options["field"]) is not None]
    if not values:
        return {"value": None}
    top = max(values)
    if isinstance(top, dt.datetime):
        millis = top.replace(microsecond=top.microsecond // 1000 * 1000)
        return {"value": millis.timestamp() * 1000,
                "value_as_string": millis.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    return {"value": float(top)}


def main(argv: list[str] | None = None) -> None:
    def arguments(parser: Any) -> None:
        parser.add_argument("--flavor", choices=("elasticsearch", "opensearch"), default="elasticsearch")

    serve_main("An in-memory stand-in for an Elasticsearch or OpenSearch cluster (not a real server).",
               lambda o: SearchServer(o.flavor, host=o.host, port=o.port, background=False), arguments, argv)


if __name__ == "__main__":
    main()
