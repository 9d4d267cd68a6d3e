"""Publishing versions and moving aliases, on the event store.

Published versions never change, so :meth:`Registry.published` keeps the ones it has read in memory:
loading an execution (which needs its version's definition) costs no read of the registry's stream
after the first. Aliases move and versions get published, so :meth:`Registry.resolve` reads the
stream (what it added since the previous read) by default. ``resolve(reference, fresh=False)``
answers from the state machine as this process last folded it, without a read, and says which
version of the registry stream that was (:attr:`Resolved.registry_version`): a caller that commits
what it decided with a guard on that version (``EventStore.append(..., guard=...)``, as an
execution's start does) is refused by the store when the stream has moved since, refreshes
(``resolve`` again, fresh) and decides again.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.asl.validate import validate_definition
from orchestrator.errors import UsageError
from orchestrator.registry import model
from orchestrator.registry.model import Route, StateMachine, Version
from orchestrator.store import ConcurrencyError, EventStore, NewEvent

DefinitionCheck = Callable[[str, Any], list[str]]
"""Problems (``/States/Build/Resource: ...``) an integration finds in a valid definition named ``name``."""

NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_NAMESPACE = uuid.UUID("6f0d3c1e-7a55-4c8e-9a57-3b7e2f1f2a10")
_PUBLISHED_CACHE = 4096  # versions kept in memory by Registry.published


class UnknownStateMachine(UsageError):
    """No state machine of that name was ever published."""


class UnknownVersion(UsageError):
    """The state machine has no version of that number."""


def version_of(machine: StateMachine, number: int) -> Version:
    """Version ``number`` of ``machine``; raises :class:`UnknownVersion` naming the versions it has."""
    version = machine.version(number)
    if version is None:
        raise UnknownVersion(f"{machine.name} has no version {number} (versions: 1..{len(machine.versions)})")
    return version


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a reference like ``name``, ``name:prod`` or ``name:3`` points at.

    ``registry_version``: the version of the state machine's registry stream (``model.stream_id``)
    this was resolved from (the events folded).
    """

    version: Version
    alias: str | None
    registry_version: int = 0


class Registry:
    """State machines, their versions and aliases."""

    def __init__(self, store: EventStore, checks: Sequence[DefinitionCheck] = ()) -> None:
        """``checks``: the integrations' checks of a valid definition (resources that exist, roles it
        may use); their problems refuse the publish."""
        self.store = store
        self.checks = tuple(checks)
        self._published: dict[tuple[str, int], Version] = {}
        # name -> (its folded state machine, the events it was folded from); each get() reads only
        # the events after them. Threads share it: an entry is replaced whole, never changed.
        self._machines: dict[str, tuple[StateMachine, tuple[model.FoldEvent, ...]]] = {}

    def published(self, name: str, number: int) -> Version | None:
        """Version ``number`` of ``name``; None when there is no such version (``UnknownStateMachine``
        when ``name`` was never published). Served from memory once read: versions are immutable."""
        found = self._published.get((name, number))
        if found is None:
            found = self.get(name).version(number)
        return found

    def get(self, name: str) -> StateMachine:
        """The folded state machine, current as of this call; ``UnknownStateMachine`` if it has no
        stream. Reads only the events appended since the previous call for ``name`` (one round trip,
        usually empty). The result is shared: treat it as read-only."""
        cached = self._machines.get(name)
        known = cached[1] if cached is not None else ()
        records = self.store.read_stream(model.stream_id(name), len(known) + 1)
        if cached is not None and not records:
            return cached[0]
        events = known + tuple((r.type, r.data, r.recorded_at.timestamp(), r.position) for r in records)
        if not events:
            raise UnknownStateMachine(f"unknown state machine {name!r}: publish it first")
        machine = model.fold(name, events)
        if len(self._machines) >= _PUBLISHED_CACHE:
            self._machines.clear()  # a crude bound, as for versions below
        self._machines[name] = (machine, events)
        if len(self._published) + len(machine.versions) > _PUBLISHED_CACHE:
            self._published.clear()  # a crude bound: the cache refills from the next reads
        for version in machine.versions:
            self._published[(name, version.version)] = version
        return machine

    def names(self) -> list[str]:
        """Every published state machine name."""
        names: set[str] = set()
        position = 0
        while True:
            page = self.store.read_all(position, 1000)
            if not page:
                return sorted(names)
            for record in page:
                if record.type == model.VERSION_PUBLISHED and record.stream_id.startswith("statemachine:"):
                    names.add(record.stream_id.split(":", 1)[1])
            position = page[-1].position

    def publish(
        self,
        name: str,
        definition: Any,
        *,
        description: str = "",
        published_by: str = "",
        revision: str | None = None,
        approved_by: str | None = None,
    ) -> tuple[Version, bool]:
        """Store ``definition`` as the next version of ``name`` (validated first).

        Identical content returns the existing version and False; new content, the new version and True.
        """
        if not NAME.match(name):
            raise UsageError(f"invalid state machine name {name!r}: use 1-80 letters, digits, '-' or '_'")
        problems = validate_definition(definition)
        if problems:
            lines = "\n".join(f"  {p.pointer or '/'}: {p.message}" for p in problems)
            raise UsageError(f"the definition is invalid, nothing was published:\n{lines}")
        refused = [problem for check in self.checks for problem in check(name, definition)]
        if refused:
            lines = "\n".join(f"  {problem}" for problem in refused)
            raise UsageError(f"the definition is refused, nothing was published:\n{lines}")
        digest = model.sha256(definition)
        for _ in range(5):
            try:
                machine = self.get(name)
            except UnknownStateMachine:
                machine = StateMachine(name)
            existing = machine.by_sha(digest)
            if existing is not None:
                return existing, False
            number = len(machine.versions) + 1
            data: dict[str, Any] = {
                "version": number,
                "sha256": digest,
                "definition": model.canonical(definition),
                "description": description,
                "published_by": published_by,
            }
            if revision is not None:
                data["revision"] = revision
            if approved_by is not None:
                data["approved_by"] = approved_by
            event = NewEvent(
                uuid.uuid5(_NAMESPACE, f"{name}:{digest}"),
                model.VERSION_PUBLISHED,
                data,
                {"actor": published_by},
            )
            try:
                self.store.append(model.stream_id(name), machine.stream_version, [event])
            except ConcurrencyError:
                continue
            published = self.get(name).version(number)
            assert published is not None
            return published, True
        raise UsageError(f"could not publish {name!r}: too many concurrent publishes, try again")

    def set_alias(
        self, name: str, alias: str, routing: Sequence[tuple[int, int | None]], *, by: str = ""
    ) -> tuple[Route, ...]:
        """Point ``alias`` at one version or two weighted ones (an ``AliasUpdated`` event)."""
        if not NAME.match(alias) or alias.isdigit():
            raise UsageError(f"invalid alias {alias!r}: letters, digits, '-' or '_', not only digits")
        try:
            routes = model.parse_routing(routing)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        machine = self.get(name)
        for route in routes:
            try:
                version_of(machine, route.version)
            except UnknownVersion as error:  # named by the request, not by its address: 400, not 404
                raise UsageError(str(error)) from None
        data = {"alias": alias, "routing": [r.to_json() for r in routes], "by": by}
        self.store.append(
            model.stream_id(name), machine.stream_version, [NewEvent(uuid.uuid4(), model.ALIAS_UPDATED, data)]
        )
        return routes

    def rollback_alias(self, name: str, alias: str, *, by: str = "") -> tuple[Route, ...]:
        """Point ``alias`` back at its routing before its last change (an ``AliasRolledBack`` event)."""
        machine = self.get(name)
        current = machine.aliases.get(alias)
        if current is None:
            raise UsageError(f"{name} has no alias {alias!r}")
        if len(current.history) < 2:
            raise UsageError(f"alias {name}:{alias} has no earlier routing to roll back to")
        previous = current.history[-2]
        data = {
            "alias": alias,
            "routing": [r.to_json() for r in previous],
            "by": by,
            "from": [r.to_json() for r in current.routing],
        }
        self.store.append(
            model.stream_id(name),
            machine.stream_version,
            [NewEvent(uuid.uuid4(), model.ALIAS_ROLLED_BACK, data)],
        )
        return previous

    def resolve(self, reference: str, *, rng: random.Random | None = None, fresh: bool = True) -> Resolved:
        """``name`` (latest version), ``name:ALIAS`` (weighted pick) or ``name:VERSION``.

        ``fresh`` (default): from the state machine as it is now (:meth:`get`: one read). False:
        from the state machine as this process last folded it, without a read, when it has folded
        it and the reference resolves there (else as with ``fresh``): possibly stale, so commit
        what depends on it with a guard on :attr:`Resolved.registry_version`.
        """
        name, _, qualifier = reference.partition(":")
        if not fresh:
            cached = self._machines.get(name)
            if cached is not None:
                found = _resolve(cached[0], qualifier, rng)
                if isinstance(found, Resolved):
                    return found
        found = _resolve(self.get(name), qualifier, rng)
        if isinstance(found, str):
            raise UsageError(found)
        return found


def _resolve(machine: StateMachine, qualifier: str, rng: random.Random | None) -> Resolved | str:
    """What ``qualifier`` ("": the latest version, a number, an alias) points at in ``machine``, or
    why it points at nothing there."""
    name, at = machine.name, machine.stream_version
    if not qualifier:
        latest = machine.latest
        if latest is None:  # pragma: no cover - a stream's first event publishes version 1
            return f"{name} has no published version"
        return Resolved(latest, None, at)
    if qualifier.isdigit():
        try:
            return Resolved(version_of(machine, int(qualifier)), None, at)
        except UnknownVersion as error:
            return str(error)
    alias = machine.aliases.get(qualifier)
    if alias is None or not alias.routing:
        known = ", ".join(sorted(machine.aliases)) or "none"
        return f"{name} has no alias {qualifier!r} (aliases: {known})"
    draw = (rng or random.Random(time.time_ns())).random()  # noqa: S311 - traffic split, not crypto
    version = machine.version(model.pick(alias.routing, draw))
    assert version is not None
    return Resolved(version, qualifier, at)


def diff(a: Any, b: Any, path: str = "") -> list[dict[str, Any]]:
    """Structural diff of two JSON documents: ``[{"op": "add"|"remove"|"replace", "path", ...}]``."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[dict[str, Any]] = []
        for key in a:
            sub = f"{path}/{_escape(key)}"
            if key not in b:
                out.append({"op": "remove", "path": sub, "old": a[key]})
            else:
                out.extend(diff(a[key], b[key], sub))
        out.extend({"op": "add", "path": f"{path}/{_escape(k)}", "new": b[k]} for k in b if k not in a)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in diff(x, y, f"{path}/{i}")]
    if a == b and type(a) is type(b):
        return []
    return [{"op": "replace", "path": path or "/", "old": a, "new": b}]


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
