"""Database URLs: which backend they name, and how to show them without their password."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from orchestrator.store.errors import StoreUnavailable

Backend = Literal["sqlite", "postgresql"]

_PASSWORD = re.compile(r"(?P<head>://[^:/@]*:)[^@]*(?P<tail>@)")
_DRIVERS: dict[str, Backend] = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql",
    "postgresql+psycopg": "postgresql",
    "postgres": "postgresql",
}


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database URL, normalised to the driver this store uses for its backend."""

    url: URL
    backend: Backend
    #: The URL as given, with its password replaced by ``***``: safe for messages and logs.
    redacted: str

    @property
    def sqlite_path(self) -> str | None:
        """The file path of a SQLite database; None for an in-memory one or another backend."""
        if self.backend != "sqlite" or self.url.database in (None, "", ":memory:"):
            return None
        return self.url.database


def redact(url: str) -> str:
    """Hide the password in a URL string, even one that does not parse."""
    return _PASSWORD.sub(r"\g<head>***\g<tail>", url)


def parse(url: str) -> DatabaseURL:
    """Parse ``url``; raise :class:`StoreUnavailable` for anything but SQLite and PostgreSQL.

    ``postgresql://`` and ``postgres://`` select psycopg 3; ``sqlite:///:memory:`` and ``sqlite://``
    are in-memory databases.
    """
    try:
        parsed = make_url(url)
        redacted = parsed.render_as_string(hide_password=True)
    except ArgumentError:
        raise StoreUnavailable(
            redact(url) or "''",
            "not a database URL; expected sqlite:///path/to/file.db or postgresql+psycopg://user@host/db",
        ) from None
    backend = _DRIVERS.get(parsed.drivername)
    if backend is None:
        raise StoreUnavailable(
            redacted,
            f"unsupported database {parsed.drivername!r}; use sqlite:/// or postgresql+psycopg://",
        )
    if backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
        if not parsed.database:
            raise StoreUnavailable(redacted, "the URL names no database")
    else:
        parsed = parsed.set(drivername="sqlite+pysqlite")
    return DatabaseURL(parsed, backend, redacted)
