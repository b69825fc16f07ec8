"""Small functions the Snowflake connector tests share."""

from __future__ import annotations

from pathlib import Path

import portl


def run_job(path: str, **options) -> portl.RunReport:
    """Plan and run a job file, its run state kept beside it."""
    the_plan = portl.plan(portl.load_job(path))
    try:
        state = options.pop("state", str(Path(path).parent / "state"))
        return portl.run(the_plan, portl.RunOptions(state_dir=state, **options))
    finally:
        the_plan.close()
