"""The ``[reflow]`` table of the configuration, and the networks folder it names.

```toml
[reflow]
networks = "statemachines/networks"   # folder of <name>.json specs, relative to this file
pythonpath = ["statemachines/actors"] # folders the child process imports actor modules from
python = "/usr/bin/python3"           # interpreter of the child process (default: this one)
timeout_seconds = 3600                # limit for Task states without TimeoutSeconds (default: none)
```

Without a ``networks`` key the folder is ``statemachines/networks`` in the working directory. A
network's name is its file name without ``.json``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import Config
from orchestrator.errors import UsageError
from orchestrator.integrations.reflow.spec import NAME, NetworkInvalid, NetworkSpec, parse_spec

DEFAULT_FOLDER = "statemachines/networks"
_KEYS = frozenset({"networks", "pythonpath", "python", "timeout_seconds"})


class UnknownNetwork(UsageError):
    """No network of that name in the configured folder."""


@dataclass(frozen=True)
class ReflowSettings:
    """The reflow integration's configuration."""

    folder: Path
    pythonpath: tuple[Path, ...] = ()
    python: str = sys.executable
    timeout_seconds: float | None = None

    @classmethod
    def from_config(cls, config: Config) -> ReflowSettings:
        """Read and check ``[reflow]``; a bad value is a ``ConfigError`` naming the key."""
        section = config.section("reflow")
        config.refuse_unknown("reflow", section, _KEYS)
        folder = section.get("networks", DEFAULT_FOLDER)
        if not isinstance(folder, str) or not folder:
            raise config.problem("reflow.networks", "must be a folder path (a string)")
        paths = section.get("pythonpath", [])
        if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
            raise config.problem("reflow.pythonpath", "must be a list of folder paths")
        python = section.get("python", sys.executable)
        if not isinstance(python, str) or not python:
            raise config.problem("reflow.python", "must be the path of a Python interpreter")
        timeout = section.get("timeout_seconds")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)):
            raise config.problem("reflow.timeout_seconds", "must be a number of seconds")
        if timeout is not None and timeout <= 0:
            raise config.problem("reflow.timeout_seconds", "must be positive")
        return cls(
            folder=config.relative(folder) if "networks" in section else Path(DEFAULT_FOLDER),
            pythonpath=tuple(config.relative(p) for p in paths),
            python=python,
            timeout_seconds=None if timeout is None else float(timeout),
        )

    def names(self) -> list[str]:
        """The networks in the folder, sorted (none when the folder does not exist)."""
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.json") if p.is_file() and NAME.match(p.stem))

    def path_of(self, name: str) -> Path:
        """The spec file of network ``name``; ``UnknownNetwork`` when there is none."""
        path = self.folder / f"{name}.json"
        if not NAME.match(name) or not path.is_file():
            known = ", ".join(self.names()) or "none"
            raise UnknownNetwork(f"no reflow network {name!r} in {self.folder} (networks: {known})")
        return path

    def load(self, name: str) -> NetworkSpec:
        """Read and structurally check network ``name`` (imports nothing); ``UnknownNetwork`` or
        ``NetworkInvalid``."""
        path = self.path_of(name)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise NetworkInvalid(str(path), [("", f"cannot read file: {exc}")]) from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise NetworkInvalid(
                str(path), [("", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]
            ) from None
        return parse_spec(name, document, str(path))
