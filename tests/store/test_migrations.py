"""The schema by Alembic: upgrade from empty, idempotent re-upgrade, downgrade, concurrent upgraders, CLI."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect

from orchestrator.cli.db import db
from orchestrator.store import EventStore, migrate, sqlfile

from .helpers import event

TABLES = {"alembic_version", "events", "snapshots", "work_items", "workers"}


@pytest.fixture
def empty_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database: a new SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return str(request.getfixturevalue("postgres_url"))


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_head_matches_the_scripts_and_every_revision_has_sql_for_both_databases() -> None:
    assert migrate.script_head() == migrate.HEAD
    versions = migrate.MIGRATIONS / "versions"
    scripts = sorted(p for p in versions.glob("*.py") if p.name != "__init__.py")
    assert scripts
    for script in scripts:
        for dialect in ("sqlite", "postgresql"):
            names = sqlfile.parse(script.with_suffix(f".{dialect}.sql").read_text()).keys()
            assert any(n.startswith("upgrade:") for n in names), (script.name, dialect)
            assert any(n.startswith("downgrade:") for n in names), (script.name, dialect)


def test_migrations_ship_inside_the_package() -> None:
    assert migrate.MIGRATIONS.parent == Path(migrate.__file__).resolve().parent
    # Package directories (with __init__.py), so setuptools installs the .py files, and *.sql is
    # package data: an installed wheel carries them.
    assert (migrate.MIGRATIONS / "__init__.py").exists()
    assert (migrate.MIGRATIONS / "versions" / "__init__.py").exists()
    assert (migrate.MIGRATIONS / "env.py").exists()


def test_upgrade_from_empty_then_again_is_idempotent(empty_url: str, unique: Callable[[str], str]) -> None:
    assert migrate.revision_of(empty_url) is None
    assert migrate.upgrade(empty_url) == migrate.HEAD
    assert tables(empty_url) >= TABLES

    stream = unique("exec")
    with EventStore.from_url(empty_url) as store:
        recorded = store.append(stream, 0, [event()])
    assert migrate.upgrade(empty_url) == migrate.HEAD
    with EventStore.from_url(empty_url) as store:
        assert store.read_stream(stream) == recorded


def test_downgrade_to_base_and_up_again(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    assert migrate.downgrade(empty_url, "base") is None
    assert tables(empty_url) <= {"alembic_version"}
    assert migrate.upgrade(empty_url) == migrate.HEAD
    assert tables(empty_url) >= TABLES


def test_concurrent_upgraders_take_turns(empty_url: str) -> None:
    errors: list[BaseException] = []

    def upgrade() -> None:
        try:
            migrate.upgrade(empty_url)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=upgrade) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert migrate.revision_of(empty_url) == migrate.HEAD


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[CliRunner]:
    monkeypatch.delenv("ORCHESTRATOR_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    yield CliRunner()


def test_cli_upgrade_with_a_url(runner: CliRunner, empty_url: str) -> None:
    result = runner.invoke(db, ["upgrade", "--database-url", empty_url])
    assert result.exit_code == 0, result.output
    assert f"at revision {migrate.HEAD}" in result.output
    assert tables(empty_url) >= TABLES
    current = runner.invoke(db, ["current", "--database-url", empty_url])
    assert current.exit_code == 0
    assert f"{migrate.HEAD} (up to date)" in current.output


def test_cli_upgrade_takes_the_url_from_the_environment(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'from-env.db'}"
    monkeypatch.setenv("ORCHESTRATOR_DATABASE_URL", url)
    result = runner.invoke(db, ["upgrade"])
    assert result.exit_code == 0, result.output
    assert tables(url) >= TABLES


def test_cli_upgrade_defaults_to_orchestrator_db_here(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(db, ["upgrade"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "orchestrator.db").exists()
    assert "sqlite:///orchestrator.db" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["upgrade", "--database-url", "postgresql://app:s3cret@127.0.0.1:1/x"],
            "postgresql://app:***@127.0.0.1:1/x",
        ),
        (["upgrade", "--database-url", "bogus"], "not a database URL"),
        (["upgrade", "--revision", "nope"], "Can't locate revision"),
        (["current", "--database-url", "mysql://h/db"], "unsupported database"),
    ],
)
def test_cli_errors_are_clear_and_keep_passwords_out(
    runner: CliRunner, args: list[str], message: str
) -> None:
    result = runner.invoke(db, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "s3cret" not in result.output
    assert "Traceback" not in result.output
