"""Small functions the MySQL connector tests share: drive a sink as the engine does, read a
source whole, write and run job files."""

from __future__ import annotations

import textwrap

import pyarrow as pa

import portl
from portl.connectors.base import Checkpoint, WriteMode, WriteResult, WriteSpec


def write_batches(s, batches: list[pa.RecordBatch], spec: WriteSpec, run_id: str = "run-1",
                  resuming: bool = False, finish: bool = True) -> list[WriteResult]:
    """Plan, prepare, then write each batch with its checkpoint in one transaction, as the engine does."""
    schema = batches[0].schema
    s.plan(schema, spec)
    s.prepare(schema, spec, resuming)
    results = []
    for n, batch in enumerate(batches, 1):
        with s.transaction() as tx:
            results.append(s.write(batch, spec, tx))
            s.save_checkpoint(tx, run_id, Checkpoint("0", {"batch": n}, n), {"batch": n})
    if finish:
        s.finish(run_id)
    return results


def append(s, *batches: pa.RecordBatch) -> list[WriteResult]:
    return write_batches(s, list(batches), WriteSpec(WriteMode.APPEND))


def read_all(s, batch_rows: int = 1000, start=None) -> list[dict]:
    return [r for chunk in s.read(batch_rows, start) for r in chunk.data.to_pylist()]


def job_file(tmp_path, text: str, name: str = "job") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def run_job(path: str, state_dir, **options) -> portl.RunReport:
    """``portl.run(portl.plan(portl.load_job(path)))``, the plan closed afterwards."""
    the_plan = portl.plan(portl.load_job(path))
    try:
        return portl.run(the_plan, portl.RunOptions(state_dir=str(state_dir), **options))
    finally:
        the_plan.close()
