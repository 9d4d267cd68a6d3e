"""Role sessions: ``sts:AssumeRole`` for a task, cached until shortly before the credentials expire.

One :class:`RoleSessions` serves a whole process. A session is cached per role, source identity,
session tags (execution, state machine, version, revision) and duration, so the tasks of one
execution that run under the same role for the same person share one session, while another
execution, another approver or another revision always gets its own. It is renewed
``aws.refresh_margin`` seconds before it expires. Concurrent tasks asking for the same session wait
for one AssumeRole call instead of each making their own. (Hand-written, in a few lines: a TTL cache
such as cachetools' has one lifetime for every entry, while each session here expires when STS says.)

The credentials live only in memory, in :attr:`Session.environment`, which is kept out of ``repr``:
they are never logged, recorded or written anywhere. STS's answers become :class:`TaskError` s an ASL
``Catch`` can handle: ``AccessDenied`` is ``States.Permissions``, anything else ``Aws.StsError``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from orchestrator.config import Config
from orchestrator.executions.tasks import TaskError
from orchestrator.integrations.aws import clients

log = structlog.get_logger(__name__)

PERMISSIONS = "States.Permissions"
STS_ERROR = "Aws.StsError"
_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})


@dataclass(frozen=True, slots=True)
class SessionRequest:
    """What an AssumeRole call asks for; all but ``session_name`` make the cache key."""

    role_arn: str
    session_name: str
    source_identity: str | None
    tags: Mapping[str, str]
    duration_seconds: int

    @property
    def key(self) -> tuple[Any, ...]:
        """The cache key: sessions are shared only when every fact they carry is the same."""
        return (self.role_arn, self.source_identity, tuple(sorted(self.tags.items())), self.duration_seconds)


@dataclass(frozen=True, slots=True)
class Session:
    """An assumed role session. ``environment`` is secret: never log, record or persist it."""

    role_arn: str
    session_name: str
    source_identity: str | None
    assumed_role_arn: str
    expiration: float
    environment: Mapping[str, str] = field(repr=False)


@dataclass
class RoleSessions:
    """Assumes roles through STS for the ``[aws]`` table of ``config`` and caches the sessions."""

    config: Config
    refresh_margin: float = 300.0
    clock: Callable[[], float] = time.time
    _sessions: dict[tuple[Any, ...], Session] = field(default_factory=dict, repr=False)
    _locks: dict[tuple[Any, ...], threading.Lock] = field(default_factory=dict, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _sts: Any = field(default=None, repr=False)
    _sts_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def session(self, request: SessionRequest, *, state_name: str) -> tuple[Session, bool]:
        """A session for ``request`` and whether it came from the cache. Raises :class:`TaskError`."""
        key = request.key
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one AssumeRole per key at a time; other keys go on in parallel
            with self._guard:
                cached = self._sessions.get(key)
            if cached is not None and cached.expiration - self.clock() > self.refresh_margin:
                return cached, True
            fresh = self._assume(request, state_name)
            with self._guard:
                self._sessions[key] = fresh
                now = self.clock()
                for stale in [k for k, s in self._sessions.items() if s.expiration <= now]:
                    del self._sessions[stale]
                    self._locks.pop(stale, None)
            return fresh, False

    def _client(self) -> Any:
        with self._sts_lock:
            if self._sts is None:
                self._sts = clients.client("sts", self.config)
            return self._sts

    def _assume(self, request: SessionRequest, state_name: str) -> Session:
        kwargs: dict[str, Any] = {
            "RoleArn": request.role_arn,
            "RoleSessionName": request.session_name,
            "DurationSeconds": request.duration_seconds,
            "Tags": [{"Key": key, "Value": value} for key, value in request.tags.items()],
        }
        if request.source_identity is not None:
            kwargs["SourceIdentity"] = request.source_identity
        where = f"cannot assume role {request.role_arn} for state '{state_name}'"
        try:
            answer = self._client().assume_role(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or "Unknown")
            message = str(error.get("Message") or exc)
            log.warning(
                "aws.assume_role_failed",
                role_arn=request.role_arn,
                session_name=request.session_name,
                code=code,
            )
            if code in _DENIED:
                raise TaskError(PERMISSIONS, f"{where}: STS denied it (AccessDenied: {message})") from None
            raise TaskError(STS_ERROR, f"{where}: STS answered {code}: {message}") from None
        except BotoCoreError as exc:
            log.warning("aws.assume_role_failed", role_arn=request.role_arn, code=type(exc).__name__)
            raise TaskError(STS_ERROR, f"{where}: {type(exc).__name__}: {exc}") from None
        credentials = answer["Credentials"]
        expiration = credentials["Expiration"]
        environment = {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
            "AWS_DEFAULT_REGION": clients.region(self.config),
        }
        endpoint = clients.endpoint_url(self.config)
        if endpoint is not None:  # boto3 in a child process (Reflow) talks to the same endpoint
            environment["AWS_ENDPOINT_URL"] = endpoint
        session = Session(
            role_arn=request.role_arn,
            session_name=request.session_name,
            source_identity=request.source_identity,
            assumed_role_arn=str(answer.get("AssumedRoleUser", {}).get("Arn", "")),
            expiration=expiration.timestamp() if isinstance(expiration, datetime) else float(expiration),
            environment=environment,
        )
        log.info(
            "aws.role_assumed",
            role_arn=session.role_arn,
            session_name=session.session_name,
            source_identity=session.source_identity,
            expiration=session.expiration,
        )
        return session
