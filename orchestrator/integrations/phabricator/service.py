"""The integration at work: the approval executor and the handlers of the ``phabricator`` queue.

Every outside fact flows the same way. The webhook endpoint stores a delivery in the inbox
(:mod:`.inbox`); a worker claims its ``phabricator.delivery`` item and calls
:meth:`Phabricator.handle_delivery`, which reads the revision through Conduit (:mod:`.reviews`) and
:meth:`Phabricator.settle`\\ s it: records the facts, starts what trigger rules say
(:mod:`.triggers`), decides every open approval gate on the revision (:mod:`.gates` and the modules
it names) and watches the executions it started to report their outcome (:mod:`.reports`). The
first check of a new gate (``phabricator.check``) and the reconcile loop (``phabricator.reconcile``, every
``reconcile_seconds`` while gates are open or released ones are watched) settle revisions the same
way, so a webhook that never arrives delays an approval, or a revocation, but never loses it. A
released gate (``ResetOnNewDiff``) is watched for a new diff until its execution ends; a look that
finds the gate's task already answered by a concurrent look picks the watch up from the execution's
``ApprovalGranted`` (see :mod:`.gate_answers`). A handler completes its item in a fenced append with
what it concluded; when Conduit fails it schedules the next attempt with a jittered back-off instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from orchestrator.errors import UsageError
from orchestrator.executions.tasks import PENDING, TaskContext, TaskError
from orchestrator.integrations.phabricator import (
    gate_answers,
    gate_decisions,
    gate_index,
    gates,
    inbox,
    reports,
    reviews,
    triggers,
)
from orchestrator.integrations.phabricator.conduit import Conduit, ConduitError, ConduitUnavailable
from orchestrator.integrations.phabricator.policy import RoleRuleLookup, required_groups
from orchestrator.integrations.phabricator.settings import Settings
from orchestrator.integrations.phabricator.webhook import Delivery
from orchestrator.store import ClaimedWork, NewEvent

if TYPE_CHECKING:
    from orchestrator.runtime import Runtime

log = structlog.get_logger(__name__)

ConduitFactory = Callable[[Settings], Conduit]


def default_conduit(settings: Settings) -> Conduit:
    """A client for the configured install; :class:`ConduitUnavailable` when it is not configured."""
    if not settings.url or not settings.token:
        raise ConduitUnavailable(
            "Conduit is not configured: set [phabricator] url (or ORCHESTRATOR_PHABRICATOR_URL) and the "
            "token variable (ORCHESTRATOR_PHABRICATOR_TOKEN)"
        )
    return Conduit(settings.url, settings.token, timeout=settings.timeout_seconds)


@dataclass
class Phabricator:
    """The integration, over one runtime."""

    runtime: Runtime
    settings: Settings
    role_rules: RoleRuleLookup | None = None
    conduit_factory: ConduitFactory = default_conduit
    _conduit: Conduit | None = field(default=None, repr=False)

    def conduit(self) -> Conduit:
        """The Conduit client (made on first use)."""
        if self._conduit is None:
            self._conduit = self.conduit_factory(self.settings)
        return self._conduit

    def install(self) -> None:
        """Register the executor, the handlers and the queue on the runtime."""
        self.runtime.executors["phabricator"] = self.approval_executor
        self.runtime.handlers.update(
            {
                inbox.DELIVERY: self.handle_delivery,
                inbox.HARBORMASTER: self.handle_harbormaster,
                inbox.CHECK: self.handle_check,
                inbox.RECONCILE: self.handle_reconcile,
                inbox.REPORT: self.handle_report,
            }
        )
        if inbox.QUEUE not in self.runtime.queues:
            self.runtime.queues.append(inbox.QUEUE)

    # ------------------------------------------------------------------ the approval gate
    def approval_executor(self, context: TaskContext) -> Any:
        """``phabricator:approval``: open the gate and let go (``PENDING``)."""
        if context.resource_name != "approval":
            raise TaskError("Phabricator.UnknownResource", f"unknown resource {context.task.resource}")
        version = self.runtime.registry.get(context.state_machine).version(context.version)
        definition = version.definition if version is not None else {}
        groups = required_groups(self.runtime.config, context.state_machine, definition, self.role_rules)
        gate = gates.gate_of(
            context,
            reset_default=self.settings.reset_on_new_diff,
            groups=groups,
            abort_default=self.settings.abort_on_new_diff,
        )
        gate_answers.request(
            context, self.runtime.store, gate, reconcile_seconds=self.settings.reconcile_seconds
        )
        log.info("phabricator.gate_opened", execution=context.execution, revision=gate.revision)
        return PENDING

    # ------------------------------------------------------------------ settling a revision
    def settle(self, view: reviews.RevisionView, delivered: tuple[str, ...] | None) -> dict[str, Any]:
        """Record ``view``'s facts, fire triggers for the ``delivered`` transactions, decide its gates.

        ``delivered`` None: a check or reconcile round (every transaction's facts, no triggers).
        """
        store, executions = self.runtime.store, self.runtime.executions
        recorded = reviews.record_facts(store, view, delivered)
        summary: dict[str, Any] = {
            "revision": view.monogram,
            "status": view.status,
            "facts": [event.type for event in recorded],
        }
        if delivered is not None and self.settings.triggers:
            started, problems = triggers.fire(
                executions, self.settings.triggers, view, delivered, self.conduit().changed_paths
            )
            for run in started:
                reports.watch(
                    store,
                    run.execution,
                    {"kind": "comment", "revision": view.monogram},
                    poll_seconds=self.settings.report_poll_seconds,
                )
            summary["started"] = [run.execution for run in started]
            if problems:
                summary["problems"] = problems
        members: dict[str, set[str]] = {}

        def members_of(project: str) -> set[str]:
            if project not in members:
                members[project] = self.conduit().project_members(project)
            return members[project]

        outcomes: dict[str, str] = {}
        index = gate_index.read_index(store)
        for gate in index.waiting:
            if not gate.concerns(view):
                continue
            decision = gate_decisions.decide(gate, view, members_of)
            outcome = gate_answers.answer(executions, gate, decision)
            watch: gate_index.Released | None = None
            if outcome == "released" and gate.reset_on_new_diff:
                watch = gate_index.Released(gate, decision.approval["diff"], decision.approval["approver"])
            elif outcome == "gone" and gate.reset_on_new_diff:
                # released by a concurrent look that has not yet told the index
                watch = gate_answers.released_earlier(executions, gate)
                if watch is not None:
                    outcome = gate_answers.revoke_if_changed(executions, watch, view)
                    watch, outcome = (watch, "released") if outcome == "watching" else (None, outcome)
            outcomes[gate.execution] = outcome
            if watch is not None:
                gate_index.release_gate(store, gate, watch.diff, watch.approver)
            elif outcome != "waiting":
                gate_index.close_gate(store, gate, outcome)
        for watched in index.released:
            if not watched.gate.concerns(view):
                continue
            outcome = gate_answers.revoke_if_changed(executions, watched, view)
            if outcome != "watching":
                outcomes[watched.gate.execution] = outcome
                gate_index.close_gate(store, watched.gate, outcome)
        if outcomes:
            summary["gates"] = outcomes
        return summary

    # ------------------------------------------------------------------ work handlers
    def handle_delivery(self, work: ClaimedWork, worker_id: str) -> None:
        """Process one stored webhook delivery."""
        stored = self._stored(work, worker_id)
        if stored is None:
            return
        delivery = Delivery.from_json(stored)
        if delivery.object_type != "DREV":
            self._processed(
                work, worker_id, {"outcome": "ignored", "reason": f"not a revision: {delivery.object_type}"}
            )
            return
        try:
            view = reviews.fetch(self.conduit(), phid=delivery.object_phid)
            summary = self.settle(view, delivery.transactions)
        except reviews.RevisionNotVisible as exc:
            self._processed(work, worker_id, {"outcome": "not-visible", "reason": str(exc)})
            return
        except (ConduitUnavailable, ConduitError) as exc:
            self._retry_later(work, worker_id, exc)
            return
        self._processed(work, worker_id, {"outcome": "processed", **summary})

    def handle_harbormaster(self, work: ClaimedWork, worker_id: str) -> None:
        """Start the configured state machine for a Harbormaster build step and watch it."""
        request = self._stored(work, worker_id)
        if request is None:
            return
        target = str(request["target"])
        if self.settings.harbormaster_start is None:
            self._processed(
                work, worker_id, {"outcome": "ignored", "reason": "no [phabricator.harbormaster] start"}
            )
            return
        try:
            found = self.conduit().build_targets([target])
            if not found:
                self._processed(work, worker_id, {"outcome": "unknown-target", "target": target})
                return
            view = (
                reviews.fetch(self.conduit(), number=int(request["revision"]))
                if request.get("revision")
                else None
            )
        except reviews.RevisionNotVisible as exc:
            self._processed(work, worker_id, {"outcome": "not-visible", "reason": str(exc)})
            return
        except (ConduitUnavailable, ConduitError) as exc:
            self._retry_later(work, worker_id, exc)
            return
        name = f"B{request.get('build') or 0}-{target.removeprefix('PHID-HMBT-')}"[:80]
        input_value = {
            "revision": view.describe(None) if view is not None else None,
            "harbormaster": {"target": target, "build": request.get("build"), "diff": request.get("diff")},
        }
        trigger = {"source": "harbormaster", "target": target, "build": request.get("build")}
        if view is not None:
            trigger["revision"] = view.monogram
        try:
            loaded, _ = self.runtime.executions.start(
                self.settings.harbormaster_start,
                input_value,
                name=name,
                started_by=f"harbormaster:B{request.get('build') or 0}",
                trigger=trigger,
            )
        except UsageError as exc:
            self._processed(work, worker_id, {"outcome": "not-started", "reason": str(exc)})
            return
        reports.watch(
            self.runtime.store,
            loaded.id,
            {"kind": "harbormaster", "target": target},
            poll_seconds=self.settings.report_poll_seconds,
        )
        self._processed(work, worker_id, {"outcome": "processed", "started": [loaded.id]})

    def handle_check(self, work: ClaimedWork, worker_id: str) -> None:
        """Settle the revision of a gate that just opened (it may be accepted already)."""
        gate = gates.Gate.from_json({k: v for k, v in work.payload.items() if k not in ("base", "attempt")})
        try:
            self.settle(reviews.fetch_ref(self.conduit(), gate.revision), None)
        except reviews.RevisionNotVisible as exc:
            self._fail_gate(gate, str(exc))
        except (ConduitUnavailable, ConduitError) as exc:
            self._retry_later(work, worker_id, exc)
            return
        inbox.finish(self.runtime.store, work, worker_id)

    def handle_reconcile(self, work: ClaimedWork, worker_id: str) -> None:
        """Settle every revision an open gate waits on; come back while gates are open."""
        store = self.runtime.store
        index = gate_index.read_index(store)
        by_revision: dict[str, list[gates.Gate]] = defaultdict(list)
        for gate in index.waiting:
            by_revision[gate.revision].append(gate)
        for watched in index.released:
            # a watch whose execution ended needs no Conduit call to end
            if self.runtime.executions.load(watched.gate.execution).status != "RUNNING":
                gate_index.close_gate(store, watched.gate, "ended")
            else:
                by_revision.setdefault(watched.gate.revision, [])
        for revision, waiting in by_revision.items():
            try:
                self.settle(reviews.fetch_ref(self.conduit(), revision), None)
            except reviews.RevisionNotVisible as exc:
                for gate in waiting:
                    self._fail_gate(gate, str(exc))
            except (ConduitUnavailable, ConduitError) as exc:
                log.info("phabricator.reconcile_failed", revision=revision, error=str(exc))
        enqueue = []
        remaining = gate_index.read_index(store)
        if remaining.waiting or remaining.released:
            seconds = self.settings.reconcile_seconds
            bucket = max(gate_index.next_bucket(seconds), int(work.payload.get("bucket", 0)) + 1)
            enqueue.append(gate_index.reconcile_item(bucket, seconds))
        inbox.finish(store, work, worker_id, enqueue=enqueue)

    def handle_report(self, work: ClaimedWork, worker_id: str) -> None:
        """Post an ended execution's outcome back; look again later while it runs."""
        store, stream = self.runtime.store, work.stream_id
        target = reports.pending_report(store, stream)
        if target is None:
            inbox.finish(store, work, worker_id)
            return
        loaded = self.runtime.executions.load(str(target["execution"]))
        if not reports.ended(loaded):
            following = reports.next_look(stream, dict(work.payload), self.settings.report_poll_seconds)
            inbox.finish(store, work, worker_id, enqueue=[following])
            return
        try:
            if target["kind"] == "harbormaster":
                kind, unit = reports.harbormaster_message(loaded, self.settings.public_url)
                self.conduit().send_harbormaster(str(target["target"]), kind, unit)
                detail = {"message": kind}
            else:
                self.conduit().comment(
                    str(target["revision"]), reports.comment(loaded, self.settings.public_url)
                )
                detail = {"comment": str(target["revision"])}
        except (ConduitUnavailable, ConduitError) as exc:
            self._retry_later(work, worker_id, exc)
            return
        event = NewEvent(
            inbox.event_id(stream, "posted"), "ReportPosted", {"status": loaded.status, **detail}
        )
        inbox.finish(store, work, worker_id, [event])
        log.info("phabricator.reported", execution=loaded.id, status=loaded.status)

    # ------------------------------------------------------------------ helpers
    def _stored(self, work: ClaimedWork, worker_id: str) -> dict[str, Any] | None:
        """What a delivery or build-step stream stored first; None (the item completed) when there is
        nothing to do: no such stream, or processed already (a repeated item)."""
        records = self.runtime.store.read_stream(work.stream_id)
        if not records or any(r.type in ("DeliveryProcessed", "DeliveryFailed") for r in records[1:]):
            inbox.finish(self.runtime.store, work, worker_id)
            return None
        return records[0].data

    def _retry_later(self, work: ClaimedWork, worker_id: str, error: Exception) -> None:
        inbox.retry_later(
            self.runtime.store, work, worker_id, str(error), base_delay=self.settings.retry_seconds
        )

    def _fail_gate(self, gate: gates.Gate, reason: str) -> None:
        decision = gate_decisions.Decision(
            "reject", "Phabricator.RevisionNotFound", reason, {}, {"revision": gate.revision}
        )
        outcome = gate_answers.answer(self.runtime.executions, gate, decision)
        gate_index.close_gate(self.runtime.store, gate, outcome)

    def _processed(self, work: ClaimedWork, worker_id: str, summary: dict[str, Any]) -> None:
        event = NewEvent(inbox.event_id(work.stream_id, "processed"), "DeliveryProcessed", summary)
        inbox.finish(self.runtime.store, work, worker_id, [event])
        log.info("phabricator.delivery_processed", stream=work.stream_id, outcome=summary.get("outcome"))
