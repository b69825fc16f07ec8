"""The user documentation stays true to the code.

Every key of the job language (read from the pydantic models, so a new field without
documentation fails here), every transform and every logical type is documented in a table row or
a heading; every complete YAML example parses, and loads as a valid job; every relative link, and
every ``#anchor`` of one, points to something that exists.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from portl.connectors.config import Incremental
from portl.connectors.registry import config_models
from portl.spec import models as m
from portl.spec import quality as q
from portl.spec.loader import job_names, load_job
from portl.types import LOGICAL_TYPES

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
JOB_LANGUAGE = DOCS / "job-language.md"
CONNECTORS = DOCS / "connectors.md"
QUALITY = DOCS / "quality.md"
LINKED_FILES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

# The sections of the job language, each a model whose fields are keys a user writes.
LANGUAGE_MODELS: list[type[BaseModel]] = [
    m.job_model(), m.Mapping, m.ColumnSpec, m.Conflict, m.Batch, m.Retry, m.Parallel, m.Hooks,
    m.ScriptHook, m.PythonHook, m.HttpHook, m.LambdaHook, m.Validation, m.Rejects, m.Service, m.DatabaseCopy,
    Incremental, m.Reports, q.NotNull, q.AcceptedValues, q.Range, q.Pattern, q.Length, q.Missing, q.Unique,
    q.RowCount, q.SchemaCheck, q.Freshness, q.Referential, q.DateCompleteness, q.Holidays, q.VolumeAnomaly, q.SqlCheck,
]
# Models reachable from the Job that are not sections of keys, and why.
NOT_SECTIONS = {
    "Transform": "a transform is written as a name or {name: argument}, documented in the transforms table",
}


# --- reading markdown ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language tag, its text, and where it starts."""

    language: str
    text: str
    file: Path
    line: int

    def __str__(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"


def split_markdown(path: Path) -> tuple[list[str], list[Block]]:
    """The lines outside fenced code blocks, and the fenced blocks themselves."""
    prose: list[str] = []
    blocks: list[Block] = []
    fence: str | None = None
    language, start, body = "", 0, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.lstrip()
        if fence is None and stripped.startswith("```"):
            fence = line[: len(line) - len(stripped)] + "```"
            language, start, body = stripped[3:].strip(), number, []
        elif fence is not None and stripped.startswith("```") and not stripped[3:].strip():
            indent = len(fence) - 3
            blocks.append(Block(language, "\n".join(b[indent:] for b in body), path, start))
            fence = None
        elif fence is not None:
            body.append(line)
        else:
            prose.append(line)
    assert fence is None, f"{path.relative_to(ROOT)}: a code block opened on line {start} is never closed"
    return prose, blocks


def documented_names(*paths: Path) -> set[str]:
    """Names written in backticks in a table row or a heading of ``paths``."""
    names: set[str] = set()
    for path in paths:
        prose, _ = split_markdown(path)
        for line in prose:
            if line.lstrip().startswith(("|", "#")):
                names.update(re.findall(r"`([^`]+)`", line))
    return names


def yaml_blocks() -> list[Block]:
    return [b for path in sorted(DOCS.glob("*.md")) for b in split_markdown(path)[1] if b.language in ("yaml", "yml")]


def job_examples() -> list[Block]:
    """YAML blocks that hold a whole job (source and destination), or several under ``jobs:``."""
    return [b for b in yaml_blocks() if re.search(r"^\s*source:", b.text, re.M) and re.search(r"^\s*destination:", b.text, re.M)
            and not is_flow(b)]


def is_flow(block: Block) -> bool:
    """A flow of steps (``version: 2``), checked by the flow tests below, not loaded as a job."""
    return bool(re.search(r"^version:\s*2\s*$", block.text, re.M))


def heading_anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``path``."""
    prose, _ = split_markdown(path)
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose:
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = slugify(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def slugify(heading: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def relative_links(path: Path) -> list[tuple[str, str]]:
    """``(target, anchor)`` of every relative link in the prose of ``path``."""
    prose, _ = split_markdown(path)
    text = re.sub(r"`[^`]*`", "", "\n".join(prose))  # links do not live inside inline code
    found = []
    for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        found.append((file, anchor))
    return found


# --- (a) every key of the job language ----------------------------------------------------------


def key_names(model: type[BaseModel]) -> list[str]:
    """The keys a user writes for ``model``: each field's alias when it has one."""
    return [field.alias or name for name, field in model.model_fields.items()]


def nested_models(model: type[BaseModel], found: dict[str, type[BaseModel]] | None = None) -> dict[str, type[BaseModel]]:
    """Every model reachable from ``model``'s fields, by class name."""
    found = {} if found is None else found
    for field in model.model_fields.values():
        for kind in _types_in(field.annotation):
            if isinstance(kind, type) and issubclass(kind, BaseModel) and kind.__name__ not in found:
                found[kind.__name__] = kind
                nested_models(kind, found)
    return found


def _types_in(annotation) -> list:
    args = getattr(annotation, "__args__", None) or ()
    metadata = getattr(annotation, "__metadata__", None)
    if metadata is not None:  # Annotated[X, ...]
        return _types_in(annotation.__origin__)
    return [annotation, *(t for a in args for t in _types_in(a))]


@pytest.mark.parametrize("model", LANGUAGE_MODELS, ids=lambda model: model.__name__)
def test_every_key_of_the_job_language_is_documented(model):
    documented = documented_names(JOB_LANGUAGE, CONNECTORS, QUALITY)
    missing = [name for name in key_names(model) if name not in documented]
    assert not missing, (
        f"{model.__name__} keys missing from docs/job-language.md, docs/connectors.md or docs/quality.md "
        f"(write them as `key` in a table row or heading): {', '.join(missing)}"
    )


@pytest.mark.parametrize("config", config_models(), ids=lambda model: model.__module__.rsplit(".", 1)[-1])
def test_every_connector_option_is_documented(config):
    documented = documented_names(JOB_LANGUAGE, CONNECTORS)
    missing = [name for name in key_names(config) if name not in documented]
    assert not missing, (
        f"{config.__module__}.Config options missing from docs/connectors.md "
        f"(write them as `option` in a table row): {', '.join(missing)}"
    )


def test_every_connector_type_name_is_documented():
    documented = documented_names(CONNECTORS)
    for config in config_models():
        for name in config.model_fields["type"].annotation.__args__:
            assert name in documented, f"connector type {name!r} is not in a table of docs/connectors.md"


def test_the_checked_models_cover_every_section_of_the_job():
    checked = {model.__name__ for model in LANGUAGE_MODELS} | {c.__name__ for c in config_models()}
    reachable = nested_models(m.job_model())
    unchecked = sorted(set(reachable) - checked - set(NOT_SECTIONS))
    assert not unchecked, f"add these job language models to LANGUAGE_MODELS in {Path(__file__).name}: {unchecked}"


def test_every_hook_event_is_documented():
    documented = documented_names(JOB_LANGUAGE)
    assert [e for e in m.HOOK_EVENTS if e not in documented] == []


# --- (b) transforms and logical types -----------------------------------------------------------


@pytest.mark.parametrize("name", m.SIMPLE_TRANSFORMS + m.ARG_TRANSFORMS)
def test_every_transform_is_documented(name):
    assert name in documented_names(JOB_LANGUAGE), f"transform {name!r} is not in a table of docs/job-language.md"


@pytest.mark.parametrize("name", LOGICAL_TYPES)
def test_every_logical_type_is_documented(name):
    assert name in documented_names(JOB_LANGUAGE), f"type {name!r} is not in a table of docs/job-language.md"


# --- (c) YAML examples --------------------------------------------------------------------------


def test_the_docs_have_job_examples():
    assert len(job_examples()) >= 5


@pytest.mark.parametrize("block", job_examples(), ids=str)
def test_job_example_is_valid_yaml(block):
    try:
        data = yaml.safe_load(block.text)
    except yaml.YAMLError as exc:
        pytest.fail(f"{block}: the example is not valid YAML: {exc}")
    assert isinstance(data, dict), f"{block}: a job example must be a mapping"


@pytest.mark.parametrize("block", job_examples(), ids=str)
def test_job_example_loads_as_a_valid_job(block, tmp_path):
    job_file = tmp_path / "job.yaml"
    job_file.write_text(block.text, encoding="utf-8")
    environ = {name: "x" for name in re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)", block.text)}
    for name in job_names(str(job_file)):
        load_job(str(job_file), name if "jobs:" in block.text else None, environ=environ)


def test_every_yaml_block_in_the_docs_parses():
    for block in yaml_blocks():
        try:
            yaml.safe_load(block.text)
        except yaml.YAMLError as exc:
            pytest.fail(f"{block}: not valid YAML: {exc}")


# --- (d) links -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", LINKED_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files_and_anchors(path):
    broken = []
    for target, anchor in relative_links(path):
        linked = (path.parent / target).resolve() if target else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked):
            broken.append(f"{target}#{anchor}: no such heading in {linked.relative_to(ROOT)}")
    assert not broken, f"{path.relative_to(ROOT)} has broken links: " + "; ".join(broken)


def test_the_link_checker_sees_the_readme_links():
    targets = {target for target, _ in relative_links(ROOT / "README.md")}
    assert "docs/job-language.md" in targets


# --- (e) flows (version 2) ----------------------------------------------------------------------

STEPS_DOC = DOCS / "steps.md"


def flow_models() -> list[type[BaseModel]]:
    """The models whose fields are keys of a flow: the flow, its settings, every step type, the
    outbox calls and the http and lambda connections."""
    from portl.spec import flow_models as f
    from portl.steps.calls.config import HttpConnection, LambdaConnection

    return [f.flow_model(), f.TransactionSpec, f.OutboxSettings, f.BatchSpec, f.RetrySpec, *f.STEP_MODELS,
            f.OutboxApiCall, f.OutboxLambdaCall, HttpConnection, LambdaConnection]


@pytest.mark.parametrize("model", flow_models(), ids=lambda model: model.__name__)
def test_every_key_of_the_flow_language_is_documented(model):
    documented = documented_names(STEPS_DOC, CONNECTORS)
    missing = [name for name in key_names(model) if name not in documented]
    assert not missing, f"{model.__name__} keys missing from docs/steps.md (write them as `key` in a table row): {', '.join(missing)}"


def test_every_step_type_is_documented():
    from portl.spec.flow_models import STEP_TYPES

    documented = documented_names(STEPS_DOC)
    assert [t for t in STEP_TYPES if t not in documented] == []


def test_every_template_helper_is_documented():
    from portl.steps.templating import HELPERS

    documented = documented_names(STEPS_DOC)
    assert [h for h in [*HELPERS, "range"] if h not in documented] == []


@pytest.mark.parametrize("block", [b for b in split_markdown(STEPS_DOC)[1] if b.language == "yaml" and is_flow(b)], ids=str)
def test_flow_example_loads_as_a_valid_flow(block, tmp_path):
    from portl.spec.flow import load_flow
    from portl.steps.checks import check_flow

    flow_file = tmp_path / "flow.yaml"
    flow_file.write_text(block.text, encoding="utf-8")
    check_flow(load_flow(str(flow_file), environ={}))


def test_the_steps_doc_has_a_flow_example():
    assert any(is_flow(b) for b in split_markdown(STEPS_DOC)[1] if b.language == "yaml")
