"""What happened on a revision, read through Conduit and recorded as facts.

A webhook carries pointers only, so :func:`fetch` asks Conduit for the revision (status, diff,
reviewers, projects), its transactions and the usernames behind the PHIDs, and returns a
:class:`RevisionView`. :func:`record_facts` appends who did what (accepted, changes requested,
abandoned, new diff, status changes) to the revision's stream ``phabricator-revision:<PHID>``, one
event per transaction with an id derived from the transaction PHID: however often and in whatever
order deliveries and the reconcile loop see a transaction, it is recorded once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.integrations.phabricator.conduit import Conduit
from orchestrator.integrations.phabricator.inbox import event_id
from orchestrator.store import ConcurrencyError, EventStore, NewEvent

REVISION_PREFIX = "phabricator-revision:"
_FACTS = {
    "accept": "RevisionAccepted",
    "request-changes": "RevisionChangesRequested",
    "reject": "RevisionChangesRequested",
    "abandon": "RevisionAbandoned",
    "update": "RevisionUpdated",
    "status": "RevisionStatusChanged",
    "reclaim": "RevisionReclaimed",
}
ACCEPTED_STATUSES = ("accepted", "published")


@dataclass(frozen=True)
class Reviewer:
    """A reviewer of the revision and where they stand on its current diff."""

    phid: str
    username: str | None
    """None for a project or package reviewer."""
    status: str
    """``added``, ``accepted``, ``accepted-older``, ``rejected``, ``rejected-older``, ``blocking``..."""


@dataclass(frozen=True)
class Transaction:
    """One transaction of the revision, with its author's username."""

    phid: str
    type: str
    author_phid: str
    author: str
    at: int
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RevisionView:
    """A revision as Conduit sees it now, with all its transactions (newest first)."""

    id: int
    phid: str
    title: str
    uri: str
    status: str
    author: str
    repository: str | None
    projects: tuple[str, ...]
    diff: str | None
    reviewers: tuple[Reviewer, ...]
    transactions: tuple[Transaction, ...]

    @property
    def monogram(self) -> str:
        """``D12``."""
        return f"D{self.id}"

    def latest(self, kind: str, author_phid: str | None = None) -> Transaction | None:
        """The newest transaction of type ``kind`` (by ``author_phid`` when given)."""
        for transaction in self.transactions:
            if transaction.type == kind and (author_phid is None or transaction.author_phid == author_phid):
                return transaction
        return None

    def describe(self, approver: str | None = None) -> dict[str, Any]:
        """The revision as an execution input: id, PHID, diff, author, approver, repository, title, URI."""
        return {
            "id": self.monogram,
            "phid": self.phid,
            "diff": self.diff,
            "author": self.author,
            "approver": approver,
            "repository": self.repository,
            "title": self.title,
            "uri": self.uri,
        }


class RevisionNotVisible(Exception):
    """Conduit knows no such revision, or our token may not see it."""


def fetch(conduit: Conduit, *, phid: str | None = None, number: int | None = None) -> RevisionView:
    """The revision ``phid`` (or ``D<number>``) with its transactions, through Conduit."""
    found = conduit.revisions(phids=[phid] if phid else [], ids=[number] if number is not None else [])
    if not found:
        raise RevisionNotVisible(f"revision {phid or f'D{number}'} is unknown or not visible to our token")
    item = found[0]
    fields = item["fields"]
    attachments = item.get("attachments") or {}
    raw_reviewers = (attachments.get("reviewers") or {}).get("reviewers") or []
    projects = tuple((attachments.get("projects") or {}).get("projectPHIDs") or [])
    raw_transactions = conduit.transactions(item["phid"])
    people = {fields["authorPHID"]} | {t["authorPHID"] for t in raw_transactions if t.get("authorPHID")}
    people |= {r["reviewerPHID"] for r in raw_reviewers if str(r["reviewerPHID"]).startswith("PHID-USER-")}
    names = conduit.usernames(p for p in people if str(p).startswith("PHID-USER-"))
    return RevisionView(
        id=int(item["id"]),
        phid=item["phid"],
        title=fields.get("title", ""),
        uri=fields.get("uri", ""),
        status=fields["status"]["value"],
        author=names.get(fields["authorPHID"], fields["authorPHID"]),
        repository=fields.get("repositoryPHID"),
        projects=projects,
        diff=fields.get("diffPHID"),
        reviewers=tuple(
            Reviewer(r["reviewerPHID"], names.get(r["reviewerPHID"]), r["status"]) for r in raw_reviewers
        ),
        transactions=tuple(
            Transaction(
                t["phid"],
                t["type"],
                t.get("authorPHID") or "",
                names.get(t.get("authorPHID") or "", t.get("authorPHID") or ""),
                int(t.get("dateCreated") or 0),
                dict(t.get("fields") or {}),
            )
            for t in sorted(raw_transactions, key=lambda t: int(t.get("id") or 0), reverse=True)
        ),
    )


def fetch_ref(conduit: Conduit, ref: str) -> RevisionView:
    """The revision named by ``ref`` (``D12`` or ``PHID-DREV-...``, as :func:`.gates.revision_ref` gives)."""
    if ref.startswith("PHID-"):
        return fetch(conduit, phid=ref)
    return fetch(conduit, number=int(ref.removeprefix("D")))


def facts(view: RevisionView, only: tuple[str, ...] | None = None) -> list[NewEvent]:
    """The facts among ``view``'s transactions (only those in ``only`` when given), oldest first."""
    stream = revision_stream(view.phid)
    out = []
    for transaction in reversed(view.transactions):
        kind = _FACTS.get(transaction.type)
        if kind is None or (only is not None and transaction.phid not in only):
            continue
        data: dict[str, Any] = {
            "revision": view.monogram,
            "transaction": transaction.phid,
            "actor": transaction.author,
            "at": transaction.at,
        }
        if transaction.type == "update":
            data["diff"] = transaction.fields.get("new")
        if transaction.type == "status":
            data["old"], data["new"] = transaction.fields.get("old"), transaction.fields.get("new")
        out.append(NewEvent(event_id(stream, transaction.phid), kind, data))
    return out


def revision_stream(phid: str) -> str:
    """The stream of what happened on revision ``phid``."""
    return f"{REVISION_PREFIX}{phid}"


def record_facts(
    store: EventStore, view: RevisionView, only: tuple[str, ...] | None = None
) -> list[NewEvent]:
    """Append the facts of ``view`` not recorded yet; returns those appended."""
    stream = revision_stream(view.phid)
    for _ in range(10):
        recorded = {record.id for record in store.read_stream(stream)}
        new = [event for event in facts(view, only) if event.id not in recorded]
        if not new:
            return []
        try:
            store.append(stream, store.stream_version(stream), new)
        except ConcurrencyError:
            continue
        return new
    raise RuntimeError(f"{stream}: too many concurrent writers")
