"""Reusable Python actors for networks: fan a list out, format packets, gather the results back.

Fan-out/join with these is ``Split`` -> ``tpl_loop`` -> (work on ``{"index", "value"}``) -> ``Gather``:
``Split`` sends the list to ``tpl_loop`` (which emits one ``{"index", "value"}`` packet per item: one
array in, instead of many packets, which would deadlock the runtime) and its length to ``Gather``,
which answers the values in index order once it has them all. Join state lives on the actor
(``ctx.pool_upsert`` copies the whole pool on every call).
"""

from __future__ import annotations

import threading
from typing import Any

from offbit_reflow import Actor, Message  # type: ignore[import-untyped]


def _data(ctx: Any, port: str) -> Any:
    return ctx.inputs[port].get("data")


class Split(Actor):  # type: ignore[misc]
    """``in``: an array -> ``items``: the same array, ``count``: its length."""

    component = "split"
    inports = ["in"]
    outports = ["items", "count"]

    def run(self, ctx: Any) -> None:
        items = _data(ctx, "in")
        if not isinstance(items, list):
            raise TypeError(f"Split expects an array, not {type(items).__name__}")
        ctx.done({"items": Message.array(items), "count": Message.integer(len(items))})


class Gather(Actor):  # type: ignore[misc]
    """``item``: ``{"index", "value"}`` packets, ``count``: how many -> ``out``: the values in index order."""

    component = "gather"
    inports = ["item", "count"]
    outports = ["out"]

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: int | None = None
        self._items: dict[int, Any] = {}

    def run(self, ctx: Any) -> None:
        with self._lock:
            if "count" in ctx.inputs:
                self._count = int(_data(ctx, "count"))
            if "item" in ctx.inputs:
                item = _data(ctx, "item")
                if not isinstance(item, dict) or "index" not in item:
                    raise TypeError("Gather expects {'index', 'value'} items")
                self._items[int(item["index"])] = item.get("value")
            if self._count is None or len(self._items) < self._count:
                ctx.done({})
                return
            values = [self._items[i] for i in sorted(self._items)]
            self._count, self._items = None, {}
        ctx.done({"out": Message.array(values)})


class Format(Actor):  # type: ignore[misc]
    """``in``: an object -> ``out``: ``config.template`` formatted with its fields (a string), or an
    object with one formatted member per entry of ``config.fields``; ``config.keep`` lists input
    fields copied as they are (``["index"]`` keeps a ``tpl_loop`` item's position)."""

    component = "format"
    inports = ["in"]
    outports = ["out"]

    def run(self, ctx: Any) -> None:
        data = _data(ctx, "in")
        fields = data if isinstance(data, dict) else {"value": data}
        config = ctx.config or {}
        if "template" in config:
            ctx.done({"out": Message.string(str(config["template"]).format(**fields))})
            return
        out = {key: fields.get(key) for key in config.get("keep", [])}
        out.update(
            {key: str(template).format(**fields) for key, template in config.get("fields", {}).items()}
        )
        ctx.done({"out": Message.object(out)})
