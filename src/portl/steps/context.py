"""What templates see while a flow runs, and where step results are kept.

A :class:`Scope` holds the template variables: ``steps`` (results so far), ``job``, ``run_id``,
and inside a batch the item (under its ``as`` name), ``idx`` and ``item_key``. ``steps`` is a
chain of layers: a batch item gets a layer of its own, so inside the item ``steps.<name>`` is that
item's result, and when the batch ends every name saved in its items becomes a list, one entry
per item in item order (None where the step did not run), saved in the enclosing layer.
"""

from __future__ import annotations

from collections import ChainMap
from typing import Any


class Scope:
    """Template variables of one level (the flow, or one batch item) and its results layer."""

    __slots__ = ("values", "layer", "idx", "key")

    def __init__(self, values: dict[str, Any], layer: dict[str, Any], idx: tuple[int, ...] = (), key: str = ""):
        self.values = values
        self.layer = layer
        self.idx = idx
        self.key = key

    @classmethod
    def root(cls, job: str, run_id: str | None) -> Scope:
        layer: dict[str, Any] = {}
        return cls({"steps": ChainMap(layer), "job": job, "run_id": run_id}, layer)

    def item(self, alias: str, item: Any, index: int, key: str | None) -> Scope:
        """The scope of one batch item: a new results layer over this one."""
        layer: dict[str, Any] = {}
        values = dict(self.values)
        values["steps"] = ChainMap(layer, *self.values["steps"].maps)
        full_key = str(index) if key is None else key
        if self.key:
            full_key = f"{self.key}/{full_key}"
        values.update({alias: item, "idx": index, "item_key": full_key})
        return Scope(values, layer, self.idx + (index,), full_key)

    def save(self, name: str, value: Any) -> None:
        self.layer[name] = value

    def get(self, name: str) -> Any:
        return self.values["steps"].get(name)

    def collect(self, names: list[str], items: list[Scope]) -> None:
        """Save, for each name, the list of its per-item results (index-aligned)."""
        for name in names:
            self.layer[name] = [item.layer.get(name) for item in items]
