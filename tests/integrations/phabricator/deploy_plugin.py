"""A worker plugin for the process tests: the ``deploy`` Lambda function, run in the worker.

Loaded by ``orchestrator worker --plugin integrations.phabricator.deploy_plugin:install`` (``tests/``
on ``PYTHONPATH``). It registers the ``arn`` executor, answering Task states whose resource is
:data:`DEPLOY` (``arn:aws:lambda:us-east-1:123456789012:function:deploy``). The function acts under
the role session the aws integration handed the task, as a real one would: it asks STS (the moto
server of ``[aws] endpoint_url``) who it is with the session's keys, and returns that ARN with the
identity the run acts for. Without a role session it fails (``Deploy.NoRoleSession``): a deploy must
never run under the worker's own credentials.
"""

from __future__ import annotations

from typing import Any

from orchestrator.executions.tasks import TaskContext, TaskError
from orchestrator.integrations.aws.clients import client
from orchestrator.runtime import Runtime

DEPLOY = "arn:aws:lambda:us-east-1:123456789012:function:deploy"


def install(runtime: Runtime) -> None:
    """Register the ``deploy`` function as the ``arn`` executor of ``runtime``."""
    config = runtime.config

    def executor(context: TaskContext) -> Any:
        if context.task.resource != DEPLOY:
            raise TaskError("Test.UnknownResource", f"no test function {context.task.resource}")
        if context.role_environment is None:
            raise TaskError("Deploy.NoRoleSession", "the task was handed no role session")
        caller = client("sts", config, context.role_environment).get_caller_identity()
        return {
            "identity": context.identity,
            "callerArn": caller["Arn"],
            "parameters": context.task.parameters,
        }

    runtime.executors["arn"] = executor
