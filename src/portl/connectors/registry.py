"""The one registry of connectors, by the name a job uses (``type: sqlite``).

A connector module defines ``Config`` (a pydantic model whose ``type`` field is a ``Literal`` of its
names) and ``open_source(config, base_dir)`` and/or ``open_sink(config, base_dir)``; one with a sink
declares what it can do in ``sink_capabilities()`` (a :class:`~portl.connectors.base.Capabilities`,
imported only when asked for: ``portl connectors`` lists them). Built-in
modules are listed here; other packages add theirs through the ``portl.connectors`` entry point
group (``name = "package.module"``). Modules are imported only when asked for, and a module must
import its driver lazily inside the functions that need it. A built-in name is found without
reading the installed packages' entry points; a built-in always wins over an entry point.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from portl.errors import ConfigError, PortlError

BUILTIN: dict[str, str] = {
    "csv": "portl.connectors.csv",
    "tsv": "portl.connectors.csv",
    "parquet": "portl.connectors.parquet",
    "jsonl": "portl.connectors.jsonl",
    "sqlite": "portl.connectors.sqlite",
    "mysql": "portl.connectors.mysql",
    "mariadb": "portl.connectors.mysql",
    "postgres": "portl.connectors.postgres",
    "postgresql": "portl.connectors.postgres",
    "gsheet": "portl.connectors.gsheet",
    "elasticsearch": "portl.connectors.elasticsearch",
    "opensearch": "portl.connectors.elasticsearch",
    "snowflake": "portl.connectors.snowflake",
}


@lru_cache(maxsize=1)
def modules() -> dict[str, str]:
    """Every known connector name mapped to its module path: built-ins, then entry points."""
    found = dict(BUILTIN)
    for ep in entry_points(group="portl.connectors"):
        found.setdefault(ep.name, ep.value)
    return found


def is_known(type_name: str) -> bool:
    """Whether a connector is registered as ``type_name``."""
    return type_name in BUILTIN or type_name in modules()


def module_for(type_name: str) -> ModuleType:
    """Import and return the module implementing connector ``type_name``."""
    path = BUILTIN.get(type_name) or modules().get(type_name)
    if path is None:
        known = ", ".join(sorted(modules()))
        raise ConfigError(f"unknown connector type {type_name!r}; known types: {known}")
    return importlib.import_module(path)


def config_models(types: Iterable[str] | None = None) -> list[type]:
    """The distinct ``Config`` models of the connectors named ``types`` (default: every registered
    one), for the job schema. Only those connectors' modules are imported."""
    if types is None:
        found = [importlib.import_module(path) for path in dict.fromkeys(modules().values())]
    else:
        found = [module_for(name) for name in types]
    seen: dict[str, type] = {}
    for module in found:
        seen.setdefault(module.Config.__qualname__ + "@" + module.__name__, module.Config)
    return list(seen.values())


def open_source(config: Any, base_dir: str):
    """Open the source described by a connector config."""
    module = module_for(config.type)
    if not hasattr(module, "open_source"):
        raise ConfigError(f"connector {config.type!r} cannot be used as a source")
    return module.open_source(config, base_dir)


def open_sink(config: Any, base_dir: str):
    """Open the destination described by a connector config."""
    module = module_for(config.type)
    if not hasattr(module, "open_sink"):
        raise ConfigError(f"connector {config.type!r} cannot be used as a destination")
    return module.open_sink(config, base_dir)


@dataclass(frozen=True)
class ConnectorType:
    """One registered connector, as ``portl connectors`` shows it."""

    names: tuple[str, ...]
    """The type a job writes, then its other spellings."""
    module: str
    source: bool
    destination: bool
    whole_database: bool
    """Its config takes ``tables:``, for whole-database copies."""
    capabilities: Any
    """The sink's declared :class:`~portl.connectors.base.Capabilities`, None without a sink (or
    when it cannot be used here)."""
    unavailable: str | None = None
    """Why the connector cannot be used here (its driver is not installed), or None."""


def connector_types() -> list[ConnectorType]:
    """Every registered connector, one entry per module, with the names that lead to it."""
    names_of: dict[str, list[str]] = {}
    for name, path in modules().items():
        names_of.setdefault(path, []).append(name)
    found = []
    for path, names in names_of.items():
        module = importlib.import_module(path)
        sink = hasattr(module, "open_sink")
        declared = getattr(module, "sink_capabilities", None)
        capabilities, unavailable = None, None
        if sink and declared is not None:
            try:
                capabilities = declared()
            except PortlError as exc:  # a driver not installed: the connector is listed, with how to get it
                unavailable = str(exc)
        found.append(ConnectorType(
            names=tuple(names), module=path, source=hasattr(module, "open_source"), destination=sink,
            whole_database="tables" in getattr(module.Config, "model_fields", {}),
            capabilities=capabilities, unavailable=unavailable,
        ))
    return found
