"""Portl: move data between systems, correctly and fast.

The public Python API. Names load on first use, so ``import portl`` stays cheap and never imports
a database driver::

    import portl

    job = portl.load_job("job.yaml")
    the_plan = portl.plan(job)          # the dry-run: resolves everything, writes nothing
    report = portl.run(the_plan)        # executes exactly that plan
    print(report.counts.inserted)

    flow = portl.load_flow("flow.yaml")     # a version 2 file: steps
    portl.plan_flow(flow)                   # renders the first items, calls nothing
    portl.run_flow(flow)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_job": "portl.spec.loader",
    "LoadedJob": "portl.spec.loader",
    "plan": "portl.engine.plan",
    "Plan": "portl.engine.plan",
    "run": "portl.engine.run",
    "RunOptions": "portl.engine.run",
    "RunReport": "portl.engine.run",
    "Counts": "portl.engine.run",
    "SkipRow": "portl.engine.hooks",
    "load_flow": "portl.spec.flow",
    "LoadedFlow": "portl.spec.flow",
    "plan_flow": "portl.steps.plan",
    "FlowPlan": "portl.steps.plan",
    "run_flow": "portl.steps.runner",
    "FlowOptions": "portl.steps.runner",
    "FlowReport": "portl.steps.runner",
    "WriteMode": "portl.connectors.base",
    "ConflictStrategy": "portl.connectors.base",
    "PortlError": "portl.errors",
    "ConfigError": "portl.errors",
    "ConnectorError": "portl.errors",
    "TransientError": "portl.errors",
    "TerminalError": "portl.errors",
    "SourceError": "portl.errors",
    "DataError": "portl.errors",
    "ConflictError": "portl.errors",
    "HookError": "portl.errors",
    "CallError": "portl.errors",
    "OutboxError": "portl.errors",
    "StepError": "portl.errors",
    "ValidationFailed": "portl.errors",
    "RejectLimitExceeded": "portl.errors",
    "ResumeError": "portl.errors",
    "Interrupted": "portl.errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'portl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
