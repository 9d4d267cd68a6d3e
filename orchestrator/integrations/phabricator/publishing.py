"""The publish policy: a version can name the reviewed revision it came from, and be required to.

``orchestrator publish FILE --revision D123`` looks the revision up through Conduit and records it and
its approver (the author of the newest accept by a reviewer who stands accepted) in the version. With
``publish_policy = "require_approved_revision"`` publishing without ``--revision``, or with a revision
that is not accepted, is refused before anything is written.
"""

from __future__ import annotations

from orchestrator.errors import UsageError
from orchestrator.integrations.phabricator import reviews
from orchestrator.integrations.phabricator.conduit import Conduit, ConduitError, ConduitUnavailable
from orchestrator.integrations.phabricator.gates import revision_ref
from orchestrator.integrations.phabricator.settings import Settings

REQUIRE = "require_approved_revision"


def approval_for_publish(
    settings: Settings, revision: str | None, conduit: Conduit | None
) -> tuple[str | None, str | None]:
    """``(revision, approved_by)`` to record in the version; :class:`UsageError` when the policy refuses."""
    required = settings.publish_policy == REQUIRE
    if revision is None:
        if required:
            raise UsageError(
                f"publish policy {REQUIRE} is on: give --revision D<number> of an accepted revision; "
                "nothing was published"
            )
        return None, None
    try:
        ref = revision_ref(revision)
    except ValueError as exc:
        raise UsageError(f"--revision: {exc}") from None
    if conduit is None:
        raise UsageError(
            "--revision needs Conduit: set [phabricator] url (or ORCHESTRATOR_PHABRICATOR_URL) and "
            "ORCHESTRATOR_PHABRICATOR_TOKEN; nothing was published"
        )
    try:
        view = reviews.fetch_ref(conduit, ref)
    except (ConduitUnavailable, ConduitError, reviews.RevisionNotVisible) as exc:
        raise UsageError(
            f"--revision {revision}: cannot check it through Conduit: {exc}; nothing was published"
        ) from None
    if view.status not in reviews.ACCEPTED_STATUSES:
        if required:
            raise UsageError(
                f"publish policy {REQUIRE}: {view.monogram} is {view.status}, not accepted; "
                "nothing was published"
            )
        return view.monogram, None
    return view.monogram, approver_of(view)


def approver_of(view: reviews.RevisionView) -> str | None:
    """Who accepted ``view``: the newest accept by a reviewer who still stands accepted."""
    standing = {r.phid for r in view.reviewers if r.status == "accepted"}
    for transaction in view.transactions:
        if transaction.type == "accept" and (not standing or transaction.author_phid in standing):
            return transaction.author
    return None
