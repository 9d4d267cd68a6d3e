"""What a role session says about itself in CloudTrail: its name, source identity and session tags.

STS restricts each of them (``RoleSessionName`` and ``SourceIdentity``: 2-64 characters of
``[\\w+=,.@-]``; tag keys up to 128 and values up to 256 characters of letters, digits, spaces and
``_.:/=+-@``). Execution names, state names and usernames can hold anything, so each value is mapped
into STS's alphabet here, and shortened with a digest of the original when it is too long, so that two
different values never end up as the same name by truncation.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

MAX_NAME = 64
_NAME_CHAR = re.compile(r"[^\w+=,.@-]", re.ASCII)
_TAG_EXTRA = frozenset("_.:/=+-@")

TAG_EXECUTION = "orchestrator:execution"
TAG_STATE_MACHINE = "orchestrator:state-machine"
TAG_VERSION = "orchestrator:version"
TAG_REVISION = "orchestrator:revision"


def digest(*parts: str, size: int = 8) -> str:
    """A short hex digest of ``parts`` (stable across processes)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:size]


def sts_name(value: str) -> str:
    """``value`` in STS's name alphabet (other characters become ``-``)."""
    return _NAME_CHAR.sub("-", value)


def session_name(execution: str, state_name: str, attempt: int, token: str) -> str:
    """``RoleSessionName`` for the attempt whose task token is ``token``: ``<execution name>.<state>.
    <attempt>.<digest>``, at most 64 characters; the digest of the token makes it unique per attempt,
    even across Map iterations of the same state."""
    name = execution.split(":", 1)[-1]
    suffix = f".{attempt}.{digest(execution, token)}"
    room = MAX_NAME - len(suffix) - 1
    state = sts_name(state_name)[: max(room // 2, room - len(name))]
    return f"{sts_name(name)[: room - len(state)]}.{state}{suffix}"


def source_identity(identity: str) -> str | None:
    """``SourceIdentity`` for the person a run acts for (the approver, else the starter); None when
    nobody is known."""
    if not identity:
        return None
    value = sts_name(identity)
    if len(value) > MAX_NAME:
        value = f"{value[: MAX_NAME - 9]}.{digest(identity)}"
    return value.ljust(2, "_")


def tag_value(value: str) -> str:
    """``value`` as a session tag value (other characters become ``_``; at most 256)."""
    cleaned = "".join(c if c.isalnum() or c.isspace() or c in _TAG_EXTRA else "_" for c in value)
    return cleaned if len(cleaned) <= 256 else f"{cleaned[:247]}.{digest(value)}"


def session_tags(
    execution: str, state_machine: str, version: int, trigger: Mapping[str, Any] | None
) -> dict[str, str]:
    """The session tags of a run: execution, state machine, version and, when a revision started it,
    the revision."""
    tags = {
        TAG_EXECUTION: tag_value(execution),
        TAG_STATE_MACHINE: tag_value(state_machine),
        TAG_VERSION: str(version),
    }
    revision = revision_of(trigger)
    if revision:
        tags[TAG_REVISION] = tag_value(revision)
    return tags


def revision_of(trigger: Mapping[str, Any] | None) -> str | None:
    """The revision in an execution's trigger (``D123``), in whichever shape the trigger holds it."""
    if not isinstance(trigger, Mapping):
        return None
    value = trigger.get("revision")
    if isinstance(value, Mapping):
        value = value.get("id") or value.get("name") or value.get("phid")
        if isinstance(value, int):
            value = f"D{value}"
    if isinstance(value, bool) or value is None or value == "":
        return None
    return str(value) if isinstance(value, str | int) else None
