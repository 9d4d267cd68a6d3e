"""The registry's pure model: its events and the fold that turns them into state.

A state machine's stream holds three kinds of facts:

* ``StateMachineVersionPublished``: version N (1, 2, ...) with its definition, the SHA-256 of its
  canonical JSON, who published it, from which revision;
* ``AliasUpdated``: an alias now routes to one version, or to two with integer weights summing to 100;
* ``AliasRolledBack``: an alias went back to the routing it had before its last update.

Nothing is edited or deleted: rolling an alias back is one more event, and the alias' history is
the list of its routings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

VERSION_PUBLISHED = "StateMachineVersionPublished"
ALIAS_UPDATED = "AliasUpdated"
ALIAS_ROLLED_BACK = "AliasRolledBack"


def stream_id(name: str) -> str:
    """The event stream of a state machine."""
    return f"statemachine:{name}"


def canonical(definition: Any) -> str:
    """Canonical JSON text of a definition: sorted keys, no insignificant white space."""
    return json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(definition: Any) -> str:
    """The content address of a definition."""
    return hashlib.sha256(canonical(definition).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Route:
    """One version an alias routes to, with its weight (percent)."""

    version: int
    weight: int = 100

    def to_json(self) -> dict[str, int]:
        """``{"version": N, "weight": W}``."""
        return {"version": self.version, "weight": self.weight}


@dataclass(frozen=True, slots=True)
class Version:
    """An immutable published version."""

    name: str
    version: int
    sha256: str
    definition: Mapping[str, Any]
    description: str
    published_by: str
    published_at: float
    revision: str | None = None
    approved_by: str | None = None
    event_position: int | None = None


@dataclass(slots=True)
class Alias:
    """An alias and every routing it has had (the last is the current one)."""

    name: str
    history: list[tuple[Route, ...]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def routing(self) -> tuple[Route, ...]:
        """The current routing."""
        return self.history[-1] if self.history else ()


@dataclass(slots=True)
class StateMachine:
    """A state machine's versions and aliases, folded from its stream."""

    name: str
    versions: list[Version] = field(default_factory=list)
    aliases: dict[str, Alias] = field(default_factory=dict)
    stream_version: int = 0

    def version(self, number: int) -> Version | None:
        """Version ``number``, or None."""
        return self.versions[number - 1] if 0 < number <= len(self.versions) else None

    def by_sha(self, digest: str) -> Version | None:
        """The version whose definition has this SHA-256, or None."""
        return next((v for v in self.versions if v.sha256 == digest), None)

    @property
    def latest(self) -> Version | None:
        """The newest version, or None before the first publish."""
        return self.versions[-1] if self.versions else None


def parse_routing(items: Sequence[tuple[int, int | None]]) -> tuple[Route, ...]:
    """Validate ``[(version, weight|None), ...]`` as Step Functions does; raise ValueError with why."""
    if not 1 <= len(items) <= 2:
        raise ValueError("an alias routes to one version, or to two with weights")
    if len(items) == 1:
        version, weight = items[0]
        if weight not in (None, 100):
            raise ValueError("a single version takes all the traffic: its weight must be 100")
        return (Route(version, 100),)
    (v1, w1), (v2, w2) = items
    if v1 == v2:
        raise ValueError("the two versions of a weighted alias must differ")
    if w1 is None or w2 is None:
        raise ValueError("two versions need a weight each: VERSION=WEIGHT VERSION=WEIGHT")
    if not (0 <= w1 <= 100 and 0 <= w2 <= 100) or w1 + w2 != 100:
        raise ValueError(f"weights must be integers from 0 to 100 that sum to 100 (got {w1} + {w2})")
    return (Route(v1, w1), Route(v2, w2))


FoldEvent = tuple[str, Mapping[str, Any], float, int | None]
"""``(type, data, recorded_at, position)`` of one event of a state machine's stream."""


def fold(name: str, events: Iterable[FoldEvent]) -> StateMachine:
    """Fold ``(type, data, recorded_at, position)`` events into a ``StateMachine``."""
    machine = StateMachine(name)
    for kind, data, at, position in events:
        machine.stream_version += 1
        if kind == VERSION_PUBLISHED:
            machine.versions.append(
                Version(
                    name=name,
                    version=int(data["version"]),
                    sha256=str(data["sha256"]),
                    definition=json.loads(data["definition"]),
                    description=str(data.get("description", "")),
                    published_by=str(data.get("published_by", "")),
                    published_at=at,
                    revision=data.get("revision"),
                    approved_by=data.get("approved_by"),
                    event_position=position,
                )
            )
        elif kind in (ALIAS_UPDATED, ALIAS_ROLLED_BACK):
            alias = machine.aliases.setdefault(data["alias"], Alias(data["alias"]))
            routing = tuple(Route(int(r["version"]), int(r["weight"])) for r in data["routing"])
            if kind == ALIAS_ROLLED_BACK and alias.history:
                alias.history.pop()
                if not alias.history or alias.history[-1] != routing:
                    alias.history.append(routing)
            else:
                alias.history.append(routing)
            alias.changes.append(
                {"type": kind, "routing": [r.to_json() for r in routing], "at": at, "by": data.get("by", "")}
            )
        else:
            raise ValueError(f"unexpected event {kind!r} in the stream of state machine {name!r}")
    return machine


def pick(routing: Sequence[Route], draw: float) -> int:
    """The version a start goes to, for a uniform ``draw`` in [0, 1)."""
    threshold = 0.0
    for route in routing:
        threshold += route.weight / 100
        if draw < threshold:
            return route.version
    return routing[-1].version
