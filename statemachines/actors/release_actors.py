"""Python actors of the example networks (``[reflow] pythonpath`` of ``orchestrator.example.toml``).

They run in the Reflow child process of a Task state, whose ``AWS_*`` environment is exactly the
task's role session (the orchestrator replaces every inherited ``AWS_*`` variable with it), so boto3's
default credential chain acts as that role and nothing else.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from offbit_reflow import Actor, Message  # type: ignore[import-untyped]

ENDPOINT_ENV = "RELEASE_STS_ENDPOINT_URL"
"""Optional STS endpoint (a VPC endpoint; moto in the tests). Not an ``AWS_*`` name on purpose: the
child's ``AWS_*`` variables are the role session's and nothing else."""


class StampCallerIdentity(Actor):  # type: ignore[misc]
    """``in``: an object -> ``out``: the same object with ``config.field`` (default ``builtBy``) set to
    the ARN ``sts:GetCallerIdentity`` answers with the child's credentials: the role session the task
    runs under, recorded as the artifact's provenance. Needs no permission (GetCallerIdentity never
    does)."""

    component = "stamp_caller_identity"
    inports = ["in"]
    outports = ["out"]

    def run(self, ctx: Any) -> None:
        data = ctx.inputs["in"].get("data")
        if not isinstance(data, dict):
            raise TypeError(f"StampCallerIdentity expects an object, not {type(data).__name__}")
        field = str((ctx.config or {}).get("field", "builtBy"))
        sts = boto3.session.Session().client("sts", endpoint_url=os.environ.get(ENDPOINT_ENV) or None)
        arn = sts.get_caller_identity()["Arn"]
        ctx.done({"out": Message.object({**data, field: arn})})
