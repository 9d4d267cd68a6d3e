"""API tokens: who may call the HTTP API and the web UI, and with which role.

Tokens live in the event store like everything else, in one stream (``api-tokens``):
``ApiTokenCreated`` (a public id, the role, the owner, the SHA-256 of the token and who created it) and
``ApiTokenRevoked``. The token itself (``orch_<id>_<secret>``, 256 random bits) is shown once, when it is
created, and never stored or logged: a SHA-256 of a high-entropy secret cannot be reversed, so a slow
password hash would add nothing. Checking a token is a fold of that small stream (cached until the stream
grows) and a constant-time comparison of digests.

Roles are ordered: a ``viewer`` reads, an ``operator`` also starts, stops, resets and redrives
executions, an ``admin`` also publishes versions, moves aliases and manages tokens.

A token may expire: ``create(..., expires_in=...)`` records ``expiresAt`` in its ``ApiTokenCreated``
event, and from then on :meth:`Tokens.authenticate` refuses it like a revoked one. Durations are
written ``90s``, ``30m``, ``12h``, ``30d`` or ``2w`` (:func:`parse_duration`, a one-line grammar that
does not justify a dependency).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from orchestrator.asl.timestamps import format_seconds
from orchestrator.errors import UsageError
from orchestrator.store import ConcurrencyError, EventStore, NewEvent

log = structlog.get_logger(__name__)

STREAM = "api-tokens"
CREATED = "ApiTokenCreated"
REVOKED = "ApiTokenRevoked"
ROLES = ("viewer", "operator", "admin")
_TOKEN = re.compile(r"^orch_([0-9a-f]{12})_([A-Za-z0-9_-]{20,})$")
_OWNER = re.compile(r"^[^\x00-\x1f\x7f]{1,120}$")
_DURATION = re.compile(r"^([1-9][0-9]{0,6})([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_EXPIRY = timedelta(days=3650)


def parse_duration(text: str, *, where: str = "--expires-in") -> timedelta:
    """``90s``, ``30m``, ``12h``, ``30d`` or ``2w`` as a timedelta (at most ten years)."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise UsageError(f"invalid {where} {text!r}: a number and a unit, like 90s, 30m, 12h, 30d or 2w")
    duration = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if duration > MAX_EXPIRY:
        raise UsageError(f"invalid {where} {text!r}: at most 3650d")
    return duration


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's owner and role."""

    token_id: str
    owner: str
    role: str

    def may(self, role: str) -> bool:
        """Whether this principal's role includes ``role``."""
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as listed: never its secret."""

    id: str
    owner: str
    role: str
    created_at: str
    created_by: str
    revoked_at: str | None = None
    revoked_by: str | None = None
    expires_at: str | None = None

    def expired(self, now: datetime) -> bool:
        """Whether the token has expired at ``now``."""
        return self.expires_at is not None and datetime.fromisoformat(self.expires_at) <= now

    def to_json(self) -> dict[str, Any]:
        """Camel-cased JSON, as the API and ``tokens list --json`` print it."""
        return {
            "id": self.id,
            "owner": self.owner,
            "role": self.role,
            "createdAt": self.created_at,
            "createdBy": self.created_by,
            "revokedAt": self.revoked_at,
            "revokedBy": self.revoked_by,
            "expiresAt": self.expires_at,
        }


@dataclass(frozen=True, slots=True)
class _State:
    version: int
    digests: dict[str, str]
    infos: dict[str, TokenInfo]


class Tokens:
    """Create, list, revoke and check API tokens on ``store``."""

    def __init__(self, store: EventStore, *, clock: Callable[[], datetime] | None = None) -> None:
        """Tokens on ``store`` (the ``api-tokens`` stream); ``clock`` tells the time for expiry."""
        self.store = store
        self.clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._state = _State(0, {}, {})

    def create(
        self, role: str, owner: str, *, by: str = "", expires_in: timedelta | None = None
    ) -> tuple[str, TokenInfo]:
        """A new token for ``owner`` with ``role``: returns the token text (show it once) and its info.

        With ``expires_in`` the token stops working that long from now.
        """
        if role not in ROLES:
            raise UsageError(f"invalid role {role!r}: one of {', '.join(ROLES)}")
        owner = owner.strip()
        if not _OWNER.match(owner):
            raise UsageError("invalid --owner: 1-120 printable characters")
        token_id = secrets.token_hex(6)
        token = f"orch_{token_id}_{secrets.token_urlsafe(32)}"
        data = {"id": token_id, "role": role, "owner": owner, "sha256": _digest(token), "by": by}
        if expires_in is not None:
            if expires_in <= timedelta(0) or expires_in > MAX_EXPIRY:
                raise UsageError("invalid expiry: more than 0 seconds and at most 3650 days")
            data["expiresAt"] = format_seconds(self.clock() + expires_in)
        for _ in range(10):
            version = self.store.stream_version(STREAM)
            try:
                self.store.append(STREAM, version, [NewEvent(uuid.uuid4(), CREATED, data, {"actor": by})])
            except ConcurrencyError:
                continue
            log.info("token.created", token_id=token_id, role=role, owner=owner, by=by)
            info = self._fold().infos[token_id]
            return token, info
        raise UsageError("could not create the token: too many concurrent changes, try again")

    def revoke(self, token_id: str, *, by: str = "") -> TokenInfo:
        """Revoke the token with public id ``token_id`` (an ``ApiTokenRevoked`` event)."""
        for _ in range(10):
            state = self._fold()
            info = state.infos.get(token_id)
            if info is None:
                raise UsageError(f"unknown token id {token_id!r} (see `orchestrator tokens list`)")
            if info.revoked_at is not None:
                return info
            event = NewEvent(uuid.uuid4(), REVOKED, {"id": token_id, "by": by}, {"actor": by})
            try:
                self.store.append(STREAM, state.version, [event])
            except ConcurrencyError:
                continue
            log.info("token.revoked", token_id=token_id, by=by)
            return self._fold().infos[token_id]
        raise UsageError("could not revoke the token: too many concurrent changes, try again")

    def list(self) -> list[TokenInfo]:
        """Every token ever created, oldest first, revoked ones included."""
        return list(self._fold().infos.values())

    def authenticate(self, token: str) -> Principal | None:
        """The principal ``token`` stands for; None for a malformed, unknown or revoked token."""
        match = _TOKEN.match(token.strip())
        if match is None:
            return None
        state = self._fold()
        token_id = match.group(1)
        expected = state.digests.get(token_id)
        info = state.infos.get(token_id)
        if expected is None or info is None or info.revoked_at is not None:
            return None
        if info.expired(self.clock()):
            return None
        if not hmac.compare_digest(expected, _digest(token.strip())):
            return None
        return Principal(token_id, info.owner, info.role)

    def _fold(self) -> _State:
        version = self.store.stream_version(STREAM)
        with self._lock:
            if version == self._state.version:
                return self._state
            digests: dict[str, str] = {}
            infos: dict[str, TokenInfo] = {}
            records = self.store.read_stream(STREAM)
            for record in records:
                data = record.data
                at = format_seconds(record.recorded_at)
                if record.type == CREATED:
                    digests[data["id"]] = str(data["sha256"])
                    infos[data["id"]] = TokenInfo(
                        data["id"],
                        str(data["owner"]),
                        str(data["role"]),
                        at,
                        str(data.get("by", "")),
                        expires_at=data.get("expiresAt"),
                    )
                elif record.type == REVOKED and data["id"] in infos:
                    infos[data["id"]] = dataclasses.replace(
                        infos[data["id"]], revoked_at=at, revoked_by=str(data.get("by"))
                    )
            self._state = _State(len(records), digests, infos)
            return self._state


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
