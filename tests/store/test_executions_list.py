"""``Executions.list`` on the store's execution summaries, on SQLite and PostgreSQL.

Real executions (registry, engine, store): each listing is checked against the fold of the whole
global log that ``list`` used to be, so reading the projection instead changed nothing but the cost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.errors import UsageError
from orchestrator.executions.service import Executions
from orchestrator.executions.tasks import TaskContext, TaskError
from orchestrator.registry.service import Registry
from orchestrator.store import EventStore

LAMBDA = "arn:aws:states:::lambda:invoke"
MACHINE = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Result": 1, "ResultPath": "$.prepared", "Next": "Work"},
        "Work": {"Type": "Task", "Resource": LAMBDA, "End": True},
    },
}
CHAIN = {
    "StartAt": "A",
    "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "End": True}},
}
END_TYPES = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionAborted": "ABORTED",
    "ExecutionTimedOut": "TIMED_OUT",
}


def work(context: TaskContext) -> Any:
    if context.task.parameters.get("fail"):
        raise TaskError("Work.Broken", "asked to fail")
    return {"ok": True}


class Clock:
    """The executions' clock: one second per reading, so every start time differs."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def folded(store: EventStore) -> list[dict[str, Any]]:
    """What ``Executions.list`` returned before the projection: a fold of every event of the store."""
    rows: dict[str, dict[str, Any]] = {}
    position = 0
    while page := store.read_all(position, 1000):
        position = page[-1].position
        for record in page:
            if not record.stream_id.startswith("execution:"):
                continue
            execution = record.stream_id.split(":", 1)[1]
            if record.type == "ExecutionStarted" and record.version == 1:
                meta = record.metadata
                rows[execution] = {
                    "execution": execution,
                    "name": meta.get("name"),
                    "stateMachine": meta.get("state_machine"),
                    "version": meta.get("version"),
                    "status": "RUNNING",
                    "startDate": iso(record.data["ts"]),
                    "stopDate": None,
                    "startedBy": meta.get("started_by", ""),
                }
            elif execution in rows and record.type in END_TYPES:
                rows[execution].update(status=END_TYPES[record.type], stopDate=iso(record.data["ts"]))
            elif execution in rows and record.type == "ExecutionRedriven":
                rows[execution].update(status="RUNNING", stopDate=None)
    # Newest first; between equal start times (a reset copies the start of its parent), the one
    # started later (the fold used to keep the older one first).
    order = {execution: n for n, execution in enumerate(rows)}
    return sorted(rows.values(), key=lambda row: (row["startDate"], order[row["execution"]]), reverse=True)


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def executions(store: EventStore) -> Executions:
    registry = Registry(store)
    registry.publish("job", MACHINE)
    registry.publish("chain", CHAIN)
    registry.publish("chain", {**CHAIN, "Comment": "v2"})
    return Executions(store, registry, executors={"arn": work}, clock=Clock())


def run(executions: Executions, reference: str, input_value: Any, name: str, by: str = "") -> str:
    loaded, _ = executions.start(reference, input_value, name=name, started_by=by)
    return executions.run_until_settled(loaded.id, timeout=60).id


def test_list_reads_the_summaries_and_agrees_with_the_fold_of_the_log(
    executions: Executions, store: EventStore
) -> None:
    run(executions, "job", {}, "ok", by="ada")
    failed = run(executions, "job", {"fail": True}, "bad", by="grace")
    run(executions, "chain:1", {}, "c1")
    run(executions, "chain", {}, "c2")
    stopped, _ = executions.start("job", {"slow": True}, name="stopped")
    executions.stop(stopped.id, "Ops.Stop", "by hand")
    executions.start("job", {}, name="waiting")
    executions.redrive(failed)

    listed = executions.list()
    assert listed == folded(store)
    assert [(r["execution"], r["status"], r["version"], r["startedBy"]) for r in listed] == [
        ("job:waiting", "RUNNING", 1, ""),
        ("job:stopped", "ABORTED", 1, ""),
        ("chain:c2", "SUCCEEDED", 2, ""),
        ("chain:c1", "SUCCEEDED", 1, ""),
        ("job:bad", "RUNNING", 1, "grace"),
        ("job:ok", "SUCCEEDED", 1, "ada"),
    ]
    assert listed[1]["stopDate"] is not None and listed[4]["stopDate"] is None

    assert [r["execution"] for r in executions.list(state_machine="chain")] == ["chain:c2", "chain:c1"]
    assert [r["execution"] for r in executions.list(status="aborted")] == ["job:stopped"]
    assert [r["execution"] for r in executions.list(state_machine="job", status="RUNNING")] == [
        "job:waiting",
        "job:bad",
    ]
    assert executions.list(state_machine="nothing") == [] and executions.list(status="TIMED_OUT") == []


def test_list_pages(executions: Executions) -> None:
    names = [f"e{n}" for n in range(7)]
    for name in names:
        run(executions, "chain", {}, name)
    newest_first = [f"chain:{name}" for name in reversed(names)]
    assert [r["execution"] for r in executions.list()] == newest_first
    pages = [executions.list(limit=3, offset=offset) for offset in (0, 3, 6, 9)]
    assert [[r["execution"] for r in page] for page in pages] == [
        newest_first[:3],
        newest_first[3:6],
        newest_first[6:],
        [],
    ]
    assert [r["execution"] for r in executions.list(offset=5)] == newest_first[5:]
    assert executions.list(limit=0) == []


@pytest.mark.parametrize("query", [{"limit": -1}, {"offset": -2}])
def test_bad_pages_are_usage_errors(executions: Executions, query: dict[str, int]) -> None:
    with pytest.raises(UsageError, match="limit and offset must be >= 0"):
        executions.list(**query)


def test_a_reset_execution_is_listed_with_its_own_start(executions: Executions, store: EventStore) -> None:
    failed = run(executions, "job", {"fail": True}, "before")
    reset = executions.reset(failed, 2, name="after")
    executions.run_until_settled(reset.id, timeout=60)
    listed = executions.list()
    assert listed == folded(store)
    after, before = listed
    assert (after["execution"], before["execution"]) == ("job:after", "job:before")
    assert after["status"] == before["status"] == "FAILED"
    assert after["startDate"] == before["startDate"]
