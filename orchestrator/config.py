"""The configuration file: one TOML document whose top-level tables belong to one part each.

Where it comes from, first match wins: ``--config FILE``, ``ORCHESTRATOR_CONFIG``, then
``orchestrator.toml`` in the working directory; no file at all is an empty configuration. TOML is
read with the standard library's ``tomllib``. This module only finds and parses the file; each part
validates its own table (``[reflow]``, ``[airflow]``, ``[aws]``, ``[phabricator]``, ``[api]``,
``[worker]``) and reports a bad value with :meth:`Config.problem`, which names the file and the key,
and a key it does not know with :meth:`Config.refuse_unknown`, which also lists the keys it knows.

Secrets never live in this file: it names environment variables or AWS Secrets Manager secrets that
hold them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import UsageError

DEFAULT_FILE = "orchestrator.toml"
ENV_VAR = "ORCHESTRATOR_CONFIG"


class ConfigError(UsageError):
    """The configuration file is missing, unreadable or has a bad value."""


@dataclass(frozen=True)
class Config:
    """A parsed configuration file (or none: every section empty)."""

    data: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def load(cls, path: str | Path | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
        """Read ``path``, else ``$ORCHESTRATOR_CONFIG``, else ``./orchestrator.toml`` if it exists."""
        env = os.environ if environ is None else environ
        explicit = path if path is not None else env.get(ENV_VAR) or None
        if explicit is None:
            candidate = Path(DEFAULT_FILE)
            if not candidate.is_file():
                return cls()
            explicit = candidate
        file = Path(explicit)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {file}: {exc.strerror or exc}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
        return cls(data, file.resolve())

    def section(self, name: str) -> Mapping[str, Any]:
        """The top-level table ``name`` (empty when absent)."""
        value = self.data.get(name, {})
        if not isinstance(value, Mapping):
            raise self.problem(name, "must be a table")
        return value

    def problem(self, key: str, message: str) -> ConfigError:
        """An error about ``key`` (dotted, e.g. ``airflow.connections.main.base_url``) of this file."""
        where = str(self.path) if self.path is not None else "configuration"
        return ConfigError(f"{where}: {key}: {message}")

    def refuse_unknown(
        self, where: str, table: Mapping[str, Any], known: Collection[str], *, what: str = "key"
    ) -> None:
        """Refuse the first (by name) key of ``table`` that is not in ``known``:
        ``FILE: WHERE.KEY: unknown key (known: a, b, c)`` (``what`` replaces "key" in the message)."""
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise self.problem(f"{where}.{unknown[0]}", f"unknown {what} (known: {', '.join(sorted(known))})")

    def relative(self, value: str) -> Path:
        """A path from the file, relative to the file's folder (the working directory without a file)."""
        path = Path(value)
        if path.is_absolute() or self.path is None:
            return path
        return self.path.parent / path
