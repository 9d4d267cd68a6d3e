"""Errors of the States language, as Step Functions names them.

An ``StatesError`` is a failure *inside* an execution: it carries the ASL error name
(``States.Runtime``, ``States.IntrinsicFailure``, a user-defined name, ...) and a cause string, and
it is what Retry and Catch match on. Everything else (a bad CLI argument, an invalid definition) is a
``UsageError`` and never reaches an execution.
"""

from __future__ import annotations

# Predefined error names (States Language specification, "Errors").
ALL = "States.ALL"
BRANCH_FAILED = "States.BranchFailed"
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
EXCEED_TOLERATED_FAILURE_THRESHOLD = "States.ExceedToleratedFailureThreshold"
HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
INTRINSIC_FAILURE = "States.IntrinsicFailure"
ITEM_READER_FAILED = "States.ItemReaderFailed"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
PARAMETER_PATH_FAILURE = "States.ParameterPathFailure"
PERMISSIONS = "States.Permissions"
QUERY_EVALUATION_ERROR = "States.QueryEvaluationError"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
RUNTIME = "States.Runtime"
TASK_FAILED = "States.TaskFailed"
TIMEOUT = "States.Timeout"


class StatesError(Exception):
    """A failure raised while running a state; matched by Retry/Catch by its ``error`` name."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class UsageError(Exception):
    """Bad input from outside an execution: an invalid definition, argument, file or input document."""
