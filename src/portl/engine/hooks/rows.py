"""Arrow batches to hook rows and back.

Rows a hook did not change keep their original Arrow values; only changed rows are rebuilt from
Python values, then spliced back into the batch with one ``take``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from portl.engine.hooks.values import codec_for
from portl.errors import HookError



class BatchRows:
    """The rows of one batch as hooks see them, and the way back to a batch of the same schema."""

    def __init__(self, batch: pa.RecordBatch):
        self.batch = batch
        self.names = batch.schema.names
        self.codecs = [codec_for(f) for f in batch.schema]
        self._known = set(self.names)

    def json_rows(self) -> list[dict[str, Any]]:
        """Every row as a dict of JSON-able values."""
        columns = [
            [codec.encode(v) for v in codec.natives(column)]
            for codec, column in zip(self.codecs, self.batch.columns)
        ]
        if not columns:
            return [{} for _ in range(self.batch.num_rows)]
        return [dict(zip(self.names, values)) for values in zip(*columns)]

    def decode(self, row: Any, label: str, where: str) -> list[Any]:
        """A row a hook returned, as native values in schema order; HookError when unusable."""
        if not isinstance(row, dict):
            raise HookError(f"{label} returned {type(row).__name__} instead of a row object ({where})")
        unknown = [k for k in row if k not in self._known]
        if unknown:
            raise HookError(
                f"{label} returned a row with unknown column(s) {', '.join(map(repr, unknown))} ({where}); "
                f"the columns are {', '.join(self.names)}"
            )
        missing = [n for n in self.names if n not in row]
        if missing:
            raise HookError(
                f"{label} returned a row without column(s) {', '.join(map(repr, missing))} ({where}); "
                "return every column, changed or not"
            )
        values = []
        for field, codec in zip(self.batch.schema, self.codecs):
            try:
                value = codec.decode(row[field.name])
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise HookError(f"{label} returned an unusable value for column {field.name!r} ({where}): {exc}") from exc
            if value is None and not field.nullable:
                raise HookError(f"{label} returned null for column {field.name!r}, which cannot be null ({where})")
            values.append(value)
        return values

    def encode(self, values: list[Any]) -> dict[str, Any]:
        """Native values in schema order back to a JSON-able row, for the next hook in line."""
        return {name: codec.encode(v) for name, codec, v in zip(self.names, self.codecs, values)}

    def assemble(self, kept: list[int], changed: dict[int, list[Any]], changed_by: dict[int, str],
                 describe_row: Callable[[int], str]) -> pa.RecordBatch:
        """The batch of the kept rows (input order), with changed rows replaced."""
        batch = self.batch
        if not changed:
            return batch if len(kept) == batch.num_rows else batch.take(pa.array(kept, type=pa.int64()))
        order = list(changed)
        arrays = []
        for position, field in enumerate(batch.schema):
            values = [changed[i][position] for i in order]
            try:
                arrays.append(pa.array(values, type=field.type))
            except (pa.ArrowException, ValueError, TypeError, OverflowError):
                arrays.append(self._locate_bad_value(field, values, order, changed_by, describe_row))
        replacements = pa.RecordBatch.from_arrays(arrays, schema=batch.schema)
        slot = {i: batch.num_rows + n for n, i in enumerate(order)}
        indices = pa.array([slot.get(i, i) for i in kept], type=pa.int64())
        table = pa.Table.from_batches([batch, replacements]).take(indices).combine_chunks()
        return table.to_batches()[0] if table.num_rows else batch.slice(0, 0)

    @staticmethod
    def _locate_bad_value(field: pa.Field, values: list[Any], order: list[int], changed_by: dict[int, str],
                          describe_row: Callable[[int], str]) -> pa.Array:
        for value, i in zip(values, order):
            try:
                pa.array([value], type=field.type)
            except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
                raise HookError(
                    f"{changed_by[i]} returned a value for column {field.name!r} that does not fit {field.type} "
                    f"({describe_row(i)}): {value!r} ({exc})"
                ) from exc
        return pa.array(values, type=field.type)  # each value fits alone; let Arrow say what is wrong
