"""Small functions the PostgreSQL connector tests share."""

from __future__ import annotations

import textwrap

import pyarrow as pa

from portl.connectors.base import WriteSpec


def write_batch(s, batch: pa.RecordBatch, spec: WriteSpec):
    """Write one batch in its own transaction, as the engine does."""
    with s.transaction() as tx:
        return s.write(batch, spec, tx)


def rows_of(pg, query: str) -> list[tuple]:
    return pg.execute(query).fetchall()


def read_all(s, batch_rows: int = 1000, start=None) -> list[dict]:
    return [r for chunk in s.read(batch_rows, start) for r in chunk.data.to_pylist()]


def job_file(tmp_path, text: str, name: str = "job") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)
