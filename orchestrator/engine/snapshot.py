"""Snapshots of the execution machine: its whole state as JSON, and back.

Replaying a long history is the cost of loading an execution; a snapshot bounds it. ``dump`` takes the
state of an ``Execution`` at a quiescent point (between two doors: no thread is ready to run) and
returns plain JSON; ``restore`` builds an ``Execution`` of the same definition that continues exactly
as the original would, event for event (the tests prove it by restoring at every quiescent point of
many definitions and comparing the histories with plain replay).

What is saved is what the machine cannot derive from the definition: per frame (the top-level
thread, each live Parallel branch and Map iteration) its state name, input, phase, event ids, retry
counters, variables, pending task and its deadlines, a Wait's output; per running Parallel/Map its
inputs, results, counters and live children, and per failed one what a redrive resumes (the
branches/iterations that succeeded, and the frames of those that stopped); the live timers with
their sequence numbers (ties fire in the order they were set); the tasks in the order they were
scheduled; the status and result; the random generator's state (jitter, ``States.UUID``).

What the definition gives is not saved: a frame's program (the definition, a Parallel branch, a
Map's processor) and its current state's fields are found again from the parent's state, so a
snapshot is only valid for the definition it was taken with; the durable layer stores the
definition's sha256 beside it and replays in full on a mismatch.

Hand-written rather than pickled: pickle would tie stored snapshots to class layouts and import
paths and is unsafe to load from a shared database; JSON with a ``format`` number is inspectable and
refuses (``SnapshotMismatch``) what it does not understand.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from orchestrator.asl.dataflow import Scope
from orchestrator.engine.events import HistoryEvent
from orchestrator.engine.interpreter import (
    Children,
    Execution,
    ExecutionInfo,
    Frame,
    Limits,
    Phase,
    TaskRequest,
    Timer,
    TimerKind,
)

FORMAT = 1


class SnapshotMismatch(ValueError):
    """The snapshot cannot be restored here (another format, or not a quiescent machine)."""


def dump(execution: Execution) -> dict[str, Any]:
    """The machine's state as JSON-ready data. The machine must be quiescent (between doors)."""
    if execution._ready:
        raise SnapshotMismatch("only a quiescent machine (no thread ready to run) can be saved")
    root = execution._root
    live: set[int] = set()
    timers = []
    for due, seq, frame, kind, token in sorted(execution._timers, key=lambda t: (t[0], t[1])):
        if execution._timer_live((due, seq, frame, kind, token)):
            timers.append([due, seq, frame.scope, kind, token])
            live.add(id(frame))
    return {
        "format": FORMAT,
        "status": execution.status,
        "input": execution.input,
        "output": execution.output,
        "error": execution.error,
        "cause": execution.cause,
        "startTime": execution.start_time,
        "now": execution.now,
        "lastEventId": execution.last_event_id,
        "redriveCount": execution.info.redrive_count,
        "tasks": list(execution.tasks),
        "timers": timers,
        "timerSeq": execution._timer_seq,
        "timeoutAt": execution._timeout_at,
        "rng": _rng_state(execution),
        "root": None if root is None else _dump_frame(root),
    }


def restore(
    definition: dict[str, Any],
    state: dict[str, Any],
    *,
    info: ExecutionInfo | None = None,
    sink: Callable[[HistoryEvent], None] | None = None,
    limits: Limits | None = None,
) -> Execution:
    """An ``Execution`` of ``definition`` in the state ``dump`` saved. ``info`` is the one the
    execution was created with (its redrive count comes from the snapshot)."""
    if state.get("format") != FORMAT:
        raise SnapshotMismatch(f"snapshot format {state.get('format')!r}, this version reads {FORMAT}")
    execution = Execution(definition, info=info, sink=sink, limits=limits)
    execution.info = replace(execution.info, redrive_count=int(state["redriveCount"]))
    execution.status = state["status"]
    execution.input = state["input"]
    execution.output = state["output"]
    execution.error = state["error"]
    execution.cause = state["cause"]
    execution.start_time = state["startTime"]
    execution.now = state["now"]
    execution.last_event_id = state["lastEventId"]
    execution._timer_seq = state["timerSeq"]
    execution._timeout_at = state["timeoutAt"]
    version, internal, gauss = state["rng"]
    execution.rng.setstate((version, tuple(internal), gauss))
    frames: dict[str, Frame] = {}
    if state["root"] is not None:
        execution._root = _restore_frame(state["root"], definition, None, Scope(), frames)
    by_token = {f.task.id: f for f in frames.values() if f.task is not None}
    for token in state["tasks"]:
        frame = by_token[token]
        assert frame.task is not None
        execution.tasks[token] = frame.task
        execution._task_frames[token] = frame
    timers: list[Timer] = [
        (due, seq, frames[scope], cast(TimerKind, kind), token)
        for due, seq, scope, kind, token in state["timers"]
    ]
    heapq.heapify(timers)
    execution._timers = timers
    return execution


def _rng_state(execution: Execution) -> list[Any]:
    version, internal, gauss = execution.rng.getstate()
    return [version, list(internal), gauss]


def _dump_frame(frame: Frame) -> dict[str, Any]:
    out: dict[str, Any] = {
        "scope": frame.scope,
        "queryLanguage": frame.query_language,
        "variables": frame.variables.values,
        "index": frame.index,
        "stateName": frame.state_name,
        "rawInput": frame.raw_input,
        "enteredId": frame.entered_id,
        "enteredTime": frame.entered_time,
        "lastEventId": frame.last_event_id,
        "phase": frame.phase.value,
        "retryCounts": frame.retry_counts,
        "retryTotal": frame.retry_total,
        "waitOutput": frame.wait_output,
        "assigned": frame.assigned,
        "token": frame.token,
        "alive": frame.alive,
        "redriven": frame.redriven,
    }
    if frame.task is not None:
        out["task"] = _dump_task(frame.task)
    if frame.children is not None:
        out["children"] = _dump_children(frame.children)
    if frame.unfinished is not None:
        out["unfinished"] = _dump_children(frame.unfinished)
    return out


def _dump_children(children: Children) -> dict[str, Any]:
    return {
        "isMap": children.is_map,
        "inputs": children.inputs,
        "results": children.results,
        "maxConcurrency": children.max_concurrency,
        "toleratedCount": children.tolerated_count,
        "toleratedPercentage": children.tolerated_percentage,
        "nextIndex": children.next_index,
        "finished": children.finished,
        "failures": children.failures,
        "failed": children.failed,
        "succeeded": sorted(children.succeeded),
        "active": [_dump_frame(child) for child in children.active.values()],
        "stopped": [_dump_frame(child) for child in children.stopped.values()],
    }


def _dump_task(task: TaskRequest) -> dict[str, Any]:
    return {
        "id": task.id,
        "stateName": task.state_name,
        "resource": task.resource,
        "parameters": task.parameters,
        "timeoutSeconds": task.timeout_seconds,
        "heartbeatSeconds": task.heartbeat_seconds,
        "credentials": task.credentials,
        "attempt": task.attempt,
        "scope": task.scope,
        "started": task.started,
        "startedAt": task.started_at,
        "heartbeatAt": task.heartbeat_at,
    }


def _restore_frame(
    data: dict[str, Any],
    program: dict[str, Any],
    parent: Frame | None,
    variables: Scope,
    frames: dict[str, Frame],
) -> Frame:
    states = program.get("States")
    state = states.get(data["stateName"]) if isinstance(states, dict) else None
    frame = Frame(
        scope=data["scope"],
        program=program,
        query_language=data["queryLanguage"],
        variables=variables,
        parent=parent,
        index=data["index"],
        state_name=data["stateName"],
        state=state if isinstance(state, dict) else {},
        raw_input=data["rawInput"],
        entered_id=data["enteredId"],
        entered_time=data["enteredTime"],
        last_event_id=data["lastEventId"],
        phase=Phase(data["phase"]),
        retry_counts=list(data["retryCounts"]),
        retry_total=data["retryTotal"],
        wait_output=data["waitOutput"],
        assigned=data["assigned"],
        token=data["token"],
        alive=data["alive"],
        redriven=data["redriven"],
    )
    variables.values.update(data["variables"])
    if "task" in data:
        t = data["task"]
        frame.task = TaskRequest(
            id=t["id"],
            state_name=t["stateName"],
            resource=t["resource"],
            parameters=t["parameters"],
            timeout_seconds=t["timeoutSeconds"],
            heartbeat_seconds=t["heartbeatSeconds"],
            credentials=t["credentials"],
            attempt=t["attempt"],
            scope=t["scope"],
            started=t["started"],
            started_at=t["startedAt"],
            heartbeat_at=t["heartbeatAt"],
        )
    if frame.alive:
        frames[frame.scope] = frame
    if "children" in data:
        frame.children = _restore_children(data["children"], frame, frames)
    if "unfinished" in data:
        frame.unfinished = _restore_children(data["unfinished"], frame, frames)
    return frame


def _restore_children(c: dict[str, Any], frame: Frame, frames: dict[str, Frame]) -> Children:
    children = Children(
        is_map=c["isMap"],
        inputs=c["inputs"],
        programs=_programs(frame.state, is_map=c["isMap"]),
        results=c["results"],
        max_concurrency=c["maxConcurrency"],
        tolerated_count=c["toleratedCount"],
        tolerated_percentage=c["toleratedPercentage"],
        next_index=c["nextIndex"],
        finished=c["finished"],
        failures=c["failures"],
        failed=c["failed"],
        succeeded=set(c["succeeded"]),
    )
    for key, into in (("active", children.active), ("stopped", children.stopped)):
        for child in c[key]:
            program = children.programs[0 if children.is_map else child["index"]]
            into[child["index"]] = _restore_frame(child, program, frame, frame.variables.child(), frames)
    return children


def _programs(state: dict[str, Any], *, is_map: bool) -> list[dict[str, Any]]:
    """What ``Execution._parallel``/``_map`` run: the branches, or the item processor."""
    if is_map:
        return [state.get("ItemProcessor") or state.get("Iterator") or {}]
    return list(state.get("Branches", []))
