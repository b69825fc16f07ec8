"""Every question of ``portl init``, as data: key, prompt, default, check, when it applies.

The key is the answers-file key; the flag is the key with dashes (``source_type`` is
``--source-type``). Checks accept an answer as typed, as a flag gives it, or as YAML holds it, and
return it in one normal form; checking a normal form again returns it unchanged, so defaults go
through the same checks. The questions of steps 1 and 2 are in :mod:`portl.wizard.locations`,
those of step 8 in :mod:`portl.wizard.saving`; :func:`build` lists them all in order.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from portl.connectors.base import ConflictStrategy, WriteMode
from portl.engine.mapping import normalise_name, resolve_mapping
from portl.spec.models import HOOK_EVENTS, Mapping
from portl.types import LogicalType, arrow_field, parse_type
from portl.wizard import answers as short
from portl.wizard import discover
from portl.wizard.checks import choice, closest, integer, optional_integer, text, yes_no
from portl.wizard.interview import Interview, Question
from portl.wizard.locations import side_questions
from portl.wizard.saving import save_questions
from portl.wizard.samples import DATE_FORMATS, TIMESTAMP_FORMATS, detect_formats, failures, transform_text


def mapped_columns(iv: Interview) -> dict[str, str]:
    """Destination column -> source column, as the mapping stands (auto: as the engine maps)."""
    if iv.value("mapping") == "manual":
        return dict(iv.value("columns") or {})
    facts = iv.fact("source")
    table = iv.fact("destination").table
    create = iv.answers.get("create_missing_columns", True)
    plan = resolve_mapping(Mapping(auto=True, create_missing_columns=create), schema_of(facts), table)
    return {c.name: c.sources[0] for c in plan.columns if c.sources}


def schema_of(facts: discover.SourceFacts) -> pa.Schema:
    """The source's schema, as the engine's mapping sees it."""
    return pa.schema([arrow_field(c.name, parse_type(c.type)) for c in facts.columns])


def column_of(iv: Interview, key: str) -> str:
    """The destination column ``key`` names: a mapped destination column, or a mapped source column."""
    mapped = mapped_columns(iv)
    if key in mapped:
        return key
    for dest, src in mapped.items():
        if src == key:
            return dest
    hint = closest(key, list(mapped) + list(mapped.values()))
    raise ValueError(f"no column {key!r} in the mapping{hint} Mapped columns: {', '.join(mapped)}")


# --- mapping, conflicts, transforms ----------------------------------------------------------


def _columns_default(iv: Interview) -> dict[str, str]:
    return {normalise_name(name): name for name in iv.fact("source").names}


def _columns_check(value: Any, iv: Interview) -> dict[str, str]:
    given = short.pairs(value, "columns")
    sources = iv.fact("source").names
    out: dict[str, str] = {}
    for dest, src in given.items():
        dest = text(dest, "a destination column name")
        src = text(src, f"the source column of {dest}")
        if src not in sources:
            raise ValueError(f"{dest}={src}: the source has no column {src!r}{closest(src, sources)} "
                             f"Its columns: {', '.join(sources)}")
        out[dest] = src
    if not out:
        raise ValueError("map at least one column, as DEST=SOURCE")
    return out


def _per_column(convert):
    def check(value: Any, iv: Interview) -> dict[str, Any]:
        out = {}
        for key, item in short.pairs(value, "column settings").items():
            try:
                out[column_of(iv, key)] = convert(item)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return out
    return check


def _transforms_check(value: Any, iv: Interview) -> dict[str, list[Any]]:
    """Transforms by destination column; ``date`` without formats gets the ones the sample shows."""
    found = _per_column(short.transform_list)(value, iv)
    for dest, steps in found.items():
        try:
            known_columns(steps, iv.fact("source").names)
        except ValueError as exc:
            raise ValueError(f"{dest}: {exc}") from None
    return {dest: [_with_formats(step, dest, iv) for step in steps] for dest, steps in found.items()}


def known_columns(steps: list[Any], names: list[str]) -> list[Any]:
    """``steps``, once the source columns that concat and coalesce name are known to exist."""
    for position, step in enumerate(steps):
        if isinstance(step, dict) and ("concat" in step or "coalesce" in step):
            if position:
                raise ValueError(f"{next(iter(step))} reads source columns, so it must be the first transform")
            for name in step.get("concat") or step.get("coalesce") or []:
                if name not in names:
                    raise ValueError(f"the source has no column {name!r}{closest(name, names)} Its columns: "
                                     f"{', '.join(names)}")
    return steps


def _with_formats(step: Any, dest: str, iv: Interview) -> Any:
    if not (isinstance(step, dict) and set(step) <= {"date", "datetime"}):
        return step
    (name, formats), = step.items()
    source = mapped_columns(iv)[dest]
    values = _sampled(iv, source)
    if formats:
        fits_sample(formats, values, name, source)
        return step
    formats = sample_formats(values, name)
    if not formats:
        raise ValueError(f"no {name} format fits the sampled values of {source}; give one, e.g. {name}(%d/%m/%Y)")
    return {name: formats}


def _sampled(iv: Interview, source: str) -> list[Any]:
    return next(c.values for c in iv.fact("source").columns if c.name == source)


def sample_formats(values: list[Any], name: str) -> list[str]:
    """The strptime formats that read the sampled ``values`` as dates (or timestamps)."""
    texts = [v for v in values if isinstance(v, str) and v.strip()]
    if name == "date":
        formats, _ = detect_formats(texts, DATE_FORMATS, LogicalType("date"))
    else:
        formats, _ = detect_formats(texts, TIMESTAMP_FORMATS, LogicalType("timestamp"))
    return formats


def fits_sample(formats: list[str], values: list[Any], name: str, source: str) -> None:
    """ValueError when ``formats`` (none: ISO 8601) read none of the sampled text ``values`` of
    ``source`` as a ``name`` (date or datetime): a typo in a format would otherwise reject every
    row of the run."""
    texts = [v for v in values if isinstance(v, str) and v.strip()]
    logical = LogicalType("date" if name == "date" else "timestamp")
    if not texts:
        return
    if formats and detect_formats(texts, formats, logical)[0]:
        return
    if not formats and len(failures(texts, logical)) < len(texts):
        return
    shown = ", ".join(repr(v) for v in list(dict.fromkeys(texts))[:3])
    found = sample_formats(values, name)
    hint = f"; these fit: {'|'.join(found)}" if found else ""
    what = "|".join(formats) if formats else "ISO 8601"
    raise ValueError(f"{what} reads none of the sampled values of {source} ({shown}) as a {name}{hint}")


def _date_formats_check(value: Any, iv: Interview) -> dict[str, list[str]]:
    found = _per_column(_formats)(value, iv)
    types = iv.answers.get("column_types") or {}
    suggested = iv.fact("source").suggestions() if iv.answers.get("detect", True) else {}
    for dest, formats in found.items():
        source = mapped_columns(iv)[dest]
        hint = suggested.get(source)
        kind = types.get(dest) or (hint.type if hint else None) or "date"
        try:
            fits_sample(formats, _sampled(iv, source), "date" if kind == "date" else "datetime", source)
        except ValueError as exc:
            raise ValueError(f"{dest}: {exc}") from None
    return found


def type_answer(value: Any) -> str | None:
    """A logical type as written (``decimal(12,2)``), or None for keep / empty."""
    if value is None or str(value).strip().lower() in ("", "keep", "none"):
        return None
    parse_type(str(value))
    return str(value).strip().lower()


def _formats(value: Any) -> list[str]:
    found = value if isinstance(value, list) else str(value or "").split("|")
    formats = [str(f).strip() for f in found if str(f).strip()]
    if not formats:
        raise ValueError("give a strptime format, e.g. %d/%m/%Y (several joined by |)")
    return formats


def _key_default(iv: Interview) -> list[str]:
    mapped = mapped_columns(iv)
    table = iv.fact("destination").table
    if table is not None:
        return list(table.primary_key) if table.primary_key and all(k in mapped for k in table.primary_key) else []
    source_key = iv.facts["source"].primary_key if "source" in iv.facts else []
    dests = [dest for dest, src in mapped.items() if src in source_key]
    return dests if source_key and len(dests) == len(source_key) else []


def _key_check(value: Any, iv: Interview) -> list[str]:
    key = short.names(value)
    if not key:
        return []
    mapped = mapped_columns(iv)
    key = [column_of(iv, k) if k not in mapped else k for k in key]
    table = iv.fact("destination").table
    if table is not None:
        keys = [table.primary_key] + list(table.unique_keys)
        if not any(set(k) == set(key) for k in keys if k):
            known = "; ".join("(" + ", ".join(k) + ")" for k in keys if k) or "none"
            raise ValueError(f"table {table.name} has no primary key or unique index on ({', '.join(key)}), which an "
                             f"upsert needs; its keys: {known}")
    return key


def _strategies(iv: Interview) -> list[str]:
    offered = iv.fact("destination").capabilities.upsert_strategies
    return [s.value for s in ConflictStrategy if s in offered]


def _modes(iv: Interview) -> list[str]:
    offered = iv.fact("destination").capabilities.modes
    return [m.value for m in WriteMode if m in offered and m != WriteMode.UPSERT]


def _mode_check(value: Any, iv: Interview) -> str:
    if str(value).strip().lower() == "upsert":
        raise ValueError("upsert needs key columns: give --conflict-key")
    return choice(value, _modes(iv), "mode")


def _upserts(iv: Interview) -> bool:
    return iv.fact("destination").upserts


def _hooks_default(iv: Interview) -> bool:
    return any(f"{event}_hook" in iv.given for event in HOOK_EVENTS)


def _hook_check(value: Any, iv: Interview) -> dict[str, Any] | None:
    return short.hook_value(value)


HOOK_ORDER = ("before_row", "after_row", "before_batch", "after_batch", "before_job", "after_job")
_HOOK_WHAT = {
    "before_row": "Before each row is written (may change or drop it)",
    "after_row": "After each row's batch is committed",
    "before_batch": "Before each batch is written",
    "after_batch": "After each batch is committed",
    "before_job": "Before the job writes anything",
    "after_job": "After the job has run",
}


def build() -> dict[str, Question]:
    """Every question, by key, in the order the wizard asks them."""
    found: dict[str, Question] = {}
    found.update(side_questions("source"))
    found.update(side_questions("destination"))
    manual = lambda iv: iv.value("mapping") == "manual"  # noqa: E731
    existing = lambda iv: iv.fact("destination").table is not None  # noqa: E731
    for q in (
        Question("mapping", "Map columns", kind="choice", default=lambda iv: "auto",
                 choices=lambda iv: ["auto", "manual"], check=lambda v, iv: choice(v, ["auto", "manual"], "mapping"),
                 hint="auto: each source column goes to the destination column of the same name "
                      "(case and spaces ignored); manual: you choose column by column."),
        Question("columns", "Columns (DEST=SOURCE; ...)", default=_columns_default, check=_columns_check,
                 applies=manual, flag_name="--column", shown=lambda v: "; ".join(f"{d}={s}" for d, s in v.items())),
        Question("detect", "Apply the conversions suggested from the sample", kind="bool", default=lambda iv: True,
                 check=lambda v, iv: yes_no(v), asked=lambda iv: False, shown=_yn),
        Question("column_types", "Column types (COLUMN=TYPE; ..., none for the source's)", default=lambda iv: {},
                 check=_per_column(type_answer), asked=_revising("column_types"), flag_name="--column-type",
                 shown=_pairs_text),
        Question("transforms", "Transforms (COLUMN=SPEC; ..., empty for none)", default=lambda iv: {},
                 check=_transforms_check, asked=lambda iv: iv.value("mapping") == "auto",
                 hint="SPEC: lower, upper, trim, null_if_empty, money, percent, date(%d/%m/%Y), datetime(...), "
                      "default(VALUE), null_if(A|B), concat(COL|COL), coalesce(COL|COL), replace(PATTERN|WITH); "
                      "several joined by commas; e.g. Email=trim,lower; Country=upper",
                 flag_name="--transform", shown=_pairs_text),
        Question("date_formats", "Date formats (COLUMN=FORMAT|FORMAT; ..., none for the sample's)",
                 default=lambda iv: {}, check=_date_formats_check, asked=_revising("date_formats"),
                 flag_name="--date-format", shown=_formats_text),
        Question("create_missing_columns", "Add the columns the destination table lacks", kind="bool",
                 default=lambda iv: True, check=lambda v, iv: yes_no(v), shown=_yn,
                 applies=lambda iv: existing(iv) and iv.fact("destination").capabilities.alters_tables),
        Question("extra_destination_columns", "Destination columns nothing maps to", kind="choice",
                 default=lambda iv: "ignore", choices=lambda iv: ["ignore", "error"],
                 check=lambda v, iv: choice(v, ["ignore", "error"]), applies=existing),
        Question("conflict_key", "Key columns (a row whose key exists is a conflict; empty: no key, rows are added)",
                 default=_key_default, check=_key_check, applies=_upserts, shown=lambda v: ", ".join(v) or "none"),
        Question("conflict_strategy", "On a conflict", kind="choice", default=lambda iv: "overwrite",
                 choices=_strategies, check=lambda v, iv: choice(v, _strategies(iv), "strategy"),
                 applies=lambda iv: bool(iv.value("conflict_key")),
                 hint="skip: keep the existing row; overwrite: replace it; merge: incoming non-empty values win; "
                      "fail: stop and report every conflicting key."),
        Question("mode", "Write mode", kind="choice", default=lambda iv: "append", choices=_modes, check=_mode_check,
                 applies=lambda iv: not iv.value("conflict_key"),
                 hint="append: add the rows; replace: empty the destination first."),
        Question("hooks", "Add hooks (scripts, Python functions or HTTP calls around rows and batches)", kind="bool",
                 default=_hooks_default, check=lambda v, iv: yes_no(v), shown=_yn),
        *[Question(f"{event}_hook", _HOOK_WHAT[event], kind="hook", default=lambda iv: None, check=_hook_check,
                   applies=lambda iv: bool(iv.value("hooks")), shown=short.hook_text) for event in HOOK_ORDER],
        Question("batch_size", "Batch size (rows per batch; a batch commits with its checkpoint)", kind="int",
                 default=lambda iv: 25_000, check=lambda v, iv: integer(v, 1, 10_000_000)),
        Question("retry", "When writing a batch fails", kind="choice", default=lambda iv: "retry",
                 choices=lambda iv: ["retry", "skip", "fail"], check=lambda v, iv: choice(v, ["retry", "skip", "fail"]),
                 hint="retry: try again N times, then fail; skip: after the retries, reject the batch's rows and go on; "
                      "fail: stop at the first error."),
        Question("retry_attempts", "Attempts per batch, the first included", kind="int", default=lambda iv: 3,
                 check=lambda v, iv: integer(v, 1, 100), applies=lambda iv: iv.value("retry") != "fail"),
        Question("workers", "Parallel workers", kind="int", default=lambda iv: 1, check=lambda v, iv: integer(v, 1, 64)),
        Question("schema_check", "Before writing, check the mapped types fit the destination's columns",
                 kind="bool", default=lambda iv: True, check=lambda v, iv: yes_no(v), shown=_yn),
        Question("row_count", "After the run, check the destination gained exactly the rows reported", kind="bool",
                 default=lambda iv: True, check=lambda v, iv: yes_no(v), shown=_yn),
        Question("max_rejects", "Stop when more rows than this are rejected (empty: no limit)", kind="int",
                 default=lambda iv: None, check=lambda v, iv: optional_integer(v, 0),
                 shown=lambda v: "no limit" if v is None else str(v)),
        Question("preview_rows", "Rows to preview in the dry run (0: none)", kind="int", default=lambda iv: 5,
                 check=lambda v, iv: integer(v, 0, 1000)),
    ):
        found[q.key] = q
    found.update(save_questions())
    return found


def _revising(key: str):
    """Asked on a terminal only when going back to an auto mapping whose ``key`` was given as a flag:
    otherwise the dry run's problem could not be fixed without starting again."""
    return lambda iv: iv.value("mapping") == "auto" and bool(iv.previous.get(key))


def _yn(value: Any) -> str:
    return "y" if value else "n"


def _pairs_text(value: dict[str, Any]) -> str:
    if not value:
        return "none"
    return "; ".join(f"{k}={_item_text(v)}" for k, v in value.items())


def _formats_text(value: dict[str, Any]) -> str:
    return "; ".join(f"{k}={'|'.join(v)}" for k, v in value.items()) if value else "none"


def _item_text(value: Any) -> str:
    if value is None:  # a column type left as the source's
        return "keep"
    if isinstance(value, list):
        return ",".join(transform_text(v) for v in value) or "none"
    return str(value)
