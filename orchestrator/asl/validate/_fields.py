"""Field values: one checker per field name (a field means the same in every state type), plus the
structured fields: Retry, Catch, Credentials, and the Map's ItemReader, ItemBatcher, ResultWriter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from orchestrator.asl.problems import child
from orchestrator.asl.validate import _values as v
from orchestrator.asl.validate._common import JSONATA, JSONPATH, MAX_SECONDS, Context, names, shown
from orchestrator.asl.validate._resources import resource_problems

MAX_RETRY_DELAY_SECONDS: Final = 31_622_401  # about a year: the largest MaxDelaySeconds AWS accepts
MAX_LABEL_LENGTH: Final = 40
MAX_INPUT_BYTES_PER_BATCH: Final = 262_144
ALL_ERRORS: Final = "States.ALL"


@dataclass(frozen=True)
class State:
    """The state under check: its JSON, where it is, its type and effective query language."""

    body: Mapping[str, Any]
    ptr: str
    type: str
    language: str

    def at(self, *parts: str | int) -> str:
        """Pointer to a field of this state."""
        return child(self.ptr, *parts)


# --------------------------------------------------------------------------------------------------
# Field values (one checker per field name: a field means the same in every state type)

_Checker = Callable[[Context, Any, str, State], None]


def _string(field: str, **kwargs: Any) -> _Checker:
    def check(ctx: Context, value: Any, ptr: str, state: State) -> None:
        v.check_string(ctx, value, ptr, field, **kwargs)

    return check


def _path(field: str) -> _Checker:
    def check(ctx: Context, value: Any, ptr: str, state: State) -> None:
        v.check_path(ctx, value, ptr, field, allow_null=True)

    return check


def _reference(field: str, **kwargs: Any) -> _Checker:
    def check(ctx: Context, value: Any, ptr: str, state: State) -> None:
        v.check_reference_path(ctx, value, ptr, field, **kwargs)

    return check


def _seconds(field: str, low: int) -> _Checker:
    def check(ctx: Context, value: Any, ptr: str, state: State) -> None:
        v.check_int(ctx, value, ptr, field, low=low, high=MAX_SECONDS, allow_expr=state.language == JSONATA)

    return check


def _count(field: str) -> _Checker:
    def check(ctx: Context, value: Any, ptr: str, state: State) -> None:
        v.check_int(ctx, value, ptr, field, low=0, high=None, allow_expr=state.language == JSONATA)

    return check


def _selector(field: str) -> _Checker:
    def check(ctx: Context, value: Any, ptr: str, state: State) -> None:
        v.check_selector(ctx, value, ptr, field, state.language)

    return check


def _assign(ctx: Context, value: Any, ptr: str, state: State) -> None:
    v.check_assign(ctx, value, ptr, state.language)


def _arguments(ctx: Context, value: Any, ptr: str, state: State) -> None:
    v.check_template_or_expression(ctx, value, ptr, "Arguments")


def _items(ctx: Context, value: Any, ptr: str, state: State) -> None:
    v.check_array_or_expression(ctx, value, ptr, "Items")


def _timestamp(ctx: Context, value: Any, ptr: str, state: State) -> None:
    v.check_timestamp(ctx, value, ptr, "Timestamp", allow_expr=state.language == JSONATA)


def _percentage(ctx: Context, value: Any, ptr: str, state: State) -> None:
    v.check_number(
        ctx, value, ptr, "ToleratedFailurePercentage", low=0, high=100, allow_expr=state.language == JSONATA
    )


def _non_empty_list(field: str, what: str) -> _Checker:
    def check(ctx: Context, value: Any, ptr: str, state: State) -> None:
        if not isinstance(value, list) or not value:
            got = "an empty array" if isinstance(value, list) else shown(value)
            ctx.add(ptr, f"'{field}' must be a non-empty array of {what}, got {got}")

    return check


def _resource(ctx: Context, value: Any, ptr: str, state: State) -> None:
    if not isinstance(value, str) or not value:
        ctx.add(ptr, f"'Resource' must be a non-empty string (a URI naming the task), got {shown(value)}")
        return
    for message in resource_problems(value, ctx.machine_type):
        ctx.add(ptr, message)


def _credentials(ctx: Context, value: Any, ptr: str, state: State) -> None:
    if not isinstance(value, Mapping):
        ctx.add(ptr, f"'Credentials' must be an object with the field 'RoleArn', got {shown(value)}")
        return
    allowed = ("RoleArn", "RoleArn.$") if state.language == JSONPATH else ("RoleArn",)
    for key in value:
        if key not in allowed:
            ctx.add(
                child(ptr, key),
                f"The field '{key}' is not supported in 'Credentials' (allowed: {', '.join(allowed)})",
            )
    present = [key for key in ("RoleArn", "RoleArn.$") if key in value]
    if not present:
        ctx.add(ptr, "The field 'RoleArn' is required in 'Credentials' but was missing")
    elif len(present) > 1:
        ctx.add(ptr, "The fields 'RoleArn' and 'RoleArn.$' are mutually exclusive")
    if "RoleArn" in value:
        v.check_string(ctx, value["RoleArn"], child(ptr, "RoleArn"), "RoleArn")
    if "RoleArn.$" in value and state.language == JSONPATH:
        v.check_dynamic_value(ctx, "RoleArn.$", value["RoleArn.$"], child(ptr, "RoleArn.$"))


def _retry(ctx: Context, value: Any, ptr: str, state: State) -> None:
    if not isinstance(value, list):
        ctx.add(ptr, f"'Retry' must be an array of retriers, got {shown(value)}")
        return
    for i, retrier in enumerate(value):
        where = child(ptr, i)
        if not isinstance(retrier, Mapping):
            ctx.add(where, f"A retrier must be an object, got {shown(retrier)}")
            continue
        for key in retrier:
            if key not in _RETRIER_FIELDS:
                ctx.add(
                    child(where, key),
                    f"The field '{key}' is not supported in a retrier (allowed: {names(_RETRIER_FIELDS)})",
                )
        _check_error_equals(ctx, retrier, where, last=i == len(value) - 1, what="retrier")
        for key, check in _RETRIER_CHECKS.items():
            if key in retrier:
                check(ctx, retrier[key], child(where, key))


def _catch(ctx: Context, value: Any, ptr: str, state: State) -> None:
    if not isinstance(value, list):
        ctx.add(ptr, f"'Catch' must be an array of catchers, got {shown(value)}")
        return
    allowed = _CATCHER_FIELDS[state.language]
    for i, catcher in enumerate(value):
        where = child(ptr, i)
        if not isinstance(catcher, Mapping):
            ctx.add(where, f"A catcher must be an object, got {shown(catcher)}")
            continue
        for key in catcher:
            if key not in allowed:
                other = _CATCHER_FIELDS[JSONATA if state.language == JSONPATH else JSONPATH]
                why = f" in {state.language} states" if key in other else ""
                ctx.add(
                    child(where, key),
                    f"The field '{key}' is not supported in a catcher{why} (allowed: {names(allowed)})",
                )
        _check_error_equals(ctx, catcher, where, last=i == len(value) - 1, what="catcher")
        if "Next" not in catcher:
            ctx.add(where, "The field 'Next' is required in a catcher but was missing")
        else:
            v.check_string(ctx, catcher["Next"], child(where, "Next"), "Next")
        if "ResultPath" in catcher and state.language == JSONPATH:
            v.check_reference_path(
                ctx,
                catcher["ResultPath"],
                child(where, "ResultPath"),
                "ResultPath",
                allow_null=True,
                input_only=True,
            )
        if "Assign" in catcher:
            v.check_assign(ctx, catcher["Assign"], child(where, "Assign"), state.language)


def _check_error_equals(ctx: Context, handler: Mapping[str, Any], ptr: str, *, last: bool, what: str) -> None:
    if "ErrorEquals" not in handler:
        ctx.add(ptr, f"The field 'ErrorEquals' is required in a {what} but was missing")
        return
    errors = handler["ErrorEquals"]
    where = child(ptr, "ErrorEquals")
    if not isinstance(errors, list) or not errors:
        got = "an empty array" if isinstance(errors, list) else shown(errors)
        ctx.add(where, f"'ErrorEquals' must be a non-empty array of error names, got {got}")
        return
    for i, name in enumerate(errors):
        if not isinstance(name, str) or not name:
            ctx.add(child(where, i), f"An error name must be a non-empty string, got {shown(name)}")
    if ALL_ERRORS in errors:
        if len(errors) > 1:
            ctx.add(where, f"'{ALL_ERRORS}' must appear alone in 'ErrorEquals'")
        if not last:
            ctx.add(ptr, f"A {what} matching '{ALL_ERRORS}' must be the last one")


_RETRIER_FIELDS: Final = frozenset(
    {
        "ErrorEquals",
        "IntervalSeconds",
        "MaxAttempts",
        "BackoffRate",
        "MaxDelaySeconds",
        "JitterStrategy",
        "Comment",
    }
)
_CATCHER_FIELDS: Final = {
    JSONPATH: frozenset({"ErrorEquals", "Next", "ResultPath", "Assign", "Comment"}),
    JSONATA: frozenset({"ErrorEquals", "Next", "Output", "Assign", "Comment"}),
}
_RETRIER_CHECKS: Final[dict[str, Callable[[Context, Any, str], None]]] = {
    "IntervalSeconds": lambda ctx, x, p: v.check_int(ctx, x, p, "IntervalSeconds", low=1, high=MAX_SECONDS),
    "MaxAttempts": lambda ctx, x, p: v.check_int(ctx, x, p, "MaxAttempts", low=0, high=MAX_SECONDS),
    "BackoffRate": lambda ctx, x, p: v.check_number(ctx, x, p, "BackoffRate", low=1.0, high=None),
    "MaxDelaySeconds": lambda ctx, x, p: v.check_int(
        ctx, x, p, "MaxDelaySeconds", low=1, high=MAX_RETRY_DELAY_SECONDS
    ),
    "JitterStrategy": lambda ctx, x, p: v.check_enum(ctx, x, p, "JitterStrategy", ("FULL", "NONE")),
    "Comment": lambda ctx, x, p: v.check_string(ctx, x, p, "Comment", allow_empty=True),
}


def _item_reader(ctx: Context, value: Any, ptr: str, state: State) -> None:
    _check_config_object(
        ctx, value, ptr, "ItemReader", state, required=("Resource",), extra=("ReaderConfig",)
    )
    if isinstance(value, Mapping):
        config = value.get("ReaderConfig")
        if config is not None and not isinstance(config, Mapping):
            ctx.add(child(ptr, "ReaderConfig"), f"'ReaderConfig' must be an object, got {shown(config)}")
        elif isinstance(config, Mapping):
            if "MaxItems" in config and "MaxItemsPath" in config:
                ctx.add(
                    child(ptr, "ReaderConfig"), "The fields MaxItems, MaxItemsPath are mutually exclusive"
                )
            if "MaxItems" in config:
                v.check_int(
                    ctx,
                    config["MaxItems"],
                    child(ptr, "ReaderConfig", "MaxItems"),
                    "MaxItems",
                    low=1,
                    high=None,
                    allow_expr=state.language == JSONATA,
                )
            if "MaxItemsPath" in config:
                v.check_reference_path(
                    ctx, config["MaxItemsPath"], child(ptr, "ReaderConfig", "MaxItemsPath"), "MaxItemsPath"
                )


def _result_writer(ctx: Context, value: Any, ptr: str, state: State) -> None:
    _check_config_object(ctx, value, ptr, "ResultWriter", state, required=(), extra=("WriterConfig",))


def _check_config_object(
    ctx: Context,
    value: Any,
    ptr: str,
    field: str,
    state: State,
    *,
    required: tuple[str, ...],
    extra: tuple[str, ...],
) -> None:
    """``ItemReader``/``ResultWriter``: a Resource plus Parameters (JSONPath) or Arguments (JSONata)."""
    if not isinstance(value, Mapping):
        ctx.add(ptr, f"'{field}' must be an object, got {shown(value)}")
        return
    selector = "Parameters" if state.language == JSONPATH else "Arguments"
    allowed = ("Resource", selector, *extra)
    for key in value:
        if key not in allowed:
            ctx.add(
                child(ptr, key),
                f"The field '{key}' is not supported in '{field}' (allowed: {', '.join(allowed)})",
            )
    for key in required:
        if key not in value:
            ctx.add(ptr, f"The field '{key}' is required in '{field}' but was missing")
    if "Resource" in value:
        v.check_string(ctx, value["Resource"], child(ptr, "Resource"), "Resource")
    if "Parameters" in value and state.language == JSONPATH:
        v.check_payload_template(ctx, value["Parameters"], child(ptr, "Parameters"), "Parameters")
    if "Arguments" in value and state.language == JSONATA:
        v.check_template_or_expression(ctx, value["Arguments"], child(ptr, "Arguments"), "Arguments")


def _item_batcher(ctx: Context, value: Any, ptr: str, state: State) -> None:
    if not isinstance(value, Mapping):
        ctx.add(ptr, f"'ItemBatcher' must be an object, got {shown(value)}")
        return
    jsonata = state.language == JSONATA
    allowed = {"MaxItemsPerBatch", "MaxInputBytesPerBatch", "BatchInput"}
    if not jsonata:
        allowed |= {"MaxItemsPerBatchPath", "MaxInputBytesPerBatchPath"}
    for key in value:
        if key not in allowed:
            ctx.add(
                child(ptr, key),
                f"The field '{key}' is not supported in 'ItemBatcher' (allowed: {names(allowed)})",
            )
    for base, high in (("MaxItemsPerBatch", None), ("MaxInputBytesPerBatch", MAX_INPUT_BYTES_PER_BATCH)):
        if base in value and base + "Path" in value:
            ctx.add(ptr, f"The fields {base}, {base}Path are mutually exclusive")
        if base in value:
            v.check_int(ctx, value[base], child(ptr, base), base, low=1, high=high, allow_expr=jsonata)
        if base + "Path" in value and not jsonata:
            v.check_reference_path(ctx, value[base + "Path"], child(ptr, base + "Path"), base + "Path")
    if "BatchInput" in value:
        v.check_selector(ctx, value["BatchInput"], child(ptr, "BatchInput"), "BatchInput", state.language)


FIELD_CHECKS: Final[dict[str, _Checker]] = {
    "Comment": _string("Comment", allow_empty=True),
    "Next": _string("Next"),
    "End": lambda ctx, x, p, s: v.check_bool(ctx, x, p, "End"),
    "InputPath": _path("InputPath"),
    "OutputPath": _path("OutputPath"),
    "ResultPath": _reference("ResultPath", allow_null=True, input_only=True),
    "Parameters": _selector("Parameters"),
    "ResultSelector": _selector("ResultSelector"),
    "ItemSelector": _selector("ItemSelector"),
    "Assign": _assign,
    "Arguments": _arguments,
    "Resource": _resource,
    "TimeoutSeconds": _seconds("TimeoutSeconds", 1),
    "HeartbeatSeconds": _seconds("HeartbeatSeconds", 1),
    "TimeoutSecondsPath": _reference("TimeoutSecondsPath"),
    "HeartbeatSecondsPath": _reference("HeartbeatSecondsPath"),
    "Credentials": _credentials,
    "Retry": _retry,
    "Catch": _catch,
    "Choices": _non_empty_list("Choices", "Choice rules"),
    "Default": _string("Default"),
    "Seconds": _seconds("Seconds", 0),
    "Timestamp": _timestamp,
    "SecondsPath": _reference("SecondsPath"),
    "TimestampPath": _reference("TimestampPath"),
    "Error": _string("Error", allow_empty=True),
    "Cause": _string("Cause", allow_empty=True),
    "ErrorPath": _reference("ErrorPath", allow_intrinsic=True),
    "CausePath": _reference("CausePath", allow_intrinsic=True),
    "Branches": _non_empty_list("Branches", "state machines (objects with StartAt and States)"),
    "ItemProcessor": lambda ctx, x, p, s: _object(ctx, x, p, "ItemProcessor"),
    "Iterator": lambda ctx, x, p, s: _object(ctx, x, p, "Iterator"),
    "ItemsPath": _reference("ItemsPath"),
    "Items": _items,
    "ItemReader": _item_reader,
    "ItemBatcher": _item_batcher,
    "ResultWriter": _result_writer,
    "MaxConcurrency": _count("MaxConcurrency"),
    "MaxConcurrencyPath": _reference("MaxConcurrencyPath"),
    "ToleratedFailureCount": _count("ToleratedFailureCount"),
    "ToleratedFailureCountPath": _reference("ToleratedFailureCountPath"),
    "ToleratedFailurePercentage": _percentage,
    "ToleratedFailurePercentagePath": _reference("ToleratedFailurePercentagePath"),
    "Label": _string("Label", max_length=MAX_LABEL_LENGTH),
}

# Fields whose strings are never JSONata expressions (names, types, nested machines handled apart).
NOT_EXPRESSIONS: Final = frozenset(
    {
        "Type",
        "Comment",
        "QueryLanguage",
        "Next",
        "End",
        "Default",
        "Resource",
        "Retry",
        "Branches",
        "ItemProcessor",
        "Iterator",
    }
)


def _object(ctx: Context, value: Any, ptr: str, field: str) -> None:
    if not isinstance(value, Mapping):
        ctx.add(
            ptr, f"'{field}' must be an object (a state machine with StartAt and States), got {shown(value)}"
        )
