"""The one registry of connectors, by the name a job uses (``type: sqlite``).

A connector module defines ``Config`` (a pydantic model whose ``type`` field is a ``Literal`` of its
names) and ``open_source(config, base_dir)`` and/or ``open_sink(config, base_dir)``. Built-in
modules are listed here; other packages add theirs through the ``portl.connectors`` entry point
group (``name = "package.module"``). Modules are imported only when asked for, and a module must
import its driver lazily inside the functions that need it. A built-in name is found without
reading the installed packages' entry points; a built-in always wins over an entry point.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from functools import lru_cache
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from portl.errors import ConfigError

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
