"""A problem found in a definition, located by JSON Pointer (RFC 6901)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation finding: where (a JSON Pointer into the definition) and why."""

    pointer: str
    message: str

    def render(self, filename: str) -> str:
        """``FILE:POINTER: message``, the line format of ``orchestrator validate``."""
        return f"{filename}:{self.pointer or '/'}: {self.message}"


def pointer(*parts: str | int) -> str:
    """Build a JSON Pointer from path segments, escaping ``~`` and ``/`` as RFC 6901 requires."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def child(base: str, *parts: str | int) -> str:
    """Extend an existing JSON Pointer."""
    return base + pointer(*parts)
