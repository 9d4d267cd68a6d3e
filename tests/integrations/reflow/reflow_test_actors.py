"""Actors the reflow tests run in real networks (imported by the child through ``[reflow] pythonpath``)."""

from __future__ import annotations

import os
import time
from typing import Any

from offbit_reflow import Actor, Message


class Square(Actor):
    """``{"index", "value"}`` -> the same with ``value`` squared."""

    inports = ["in"]
    outports = ["out"]

    def run(self, ctx: Any) -> None:
        item = ctx.inputs["in"]["data"]
        ctx.done({"out": Message.object({"index": item["index"], "value": item["value"] ** 2})})


class Boom(Actor):
    """Raises for any input whose ``value`` is 3."""

    inports = ["in"]
    outports = ["out"]

    def run(self, ctx: Any) -> None:
        item = ctx.inputs["in"]["data"]
        if item["value"] == 3:
            raise ValueError(f"three is not allowed (item {item['index']})")
        ctx.done({"out": Message.object(item)})


class Hang(Actor):
    """Never answers."""

    inports = ["in"]
    outports = ["out"]

    def run(self, ctx: Any) -> None:
        while True:
            time.sleep(3600)


class Abort(Actor):
    """Kills its own process the way the native runtime does on bad wiring."""

    inports = ["in"]
    outports = ["out"]

    def run(self, ctx: Any) -> None:
        os.abort()


class Whoami(Actor):
    """Answers which AWS_* variables its process sees, and the child's pid."""

    inports = ["in"]
    outports = ["out"]

    def run(self, ctx: Any) -> None:
        seen = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
        ctx.done({"out": Message.object({"environment": seen, "pid": os.getpid()})})


class Silent(Actor):
    """Returns without calling ``ctx.done``."""

    inports = ["in"]
    outports = ["out"]

    def run(self, ctx: Any) -> None:
        return


class Refuses(Actor):
    """Calls ``ctx.fail``."""

    inports = ["in"]
    outports = ["out"]

    def run(self, ctx: Any) -> None:
        ctx.fail("refused: not today")
