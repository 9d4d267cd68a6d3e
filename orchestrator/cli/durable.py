"""Commands over the event store: publish, aliases, versions, executions and their history."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from orchestrator.asl.timestamps import format_seconds
from orchestrator.cli.inputs import actor, input_options, read_input
from orchestrator.cli.tables import column_widths, cut, row_text, table
from orchestrator.config import Config
from orchestrator.engine.events import HistoryEvent
from orchestrator.engine.local import load_json_file
from orchestrator.errors import UsageError
from orchestrator.executions.service import TERMINAL, Loaded
from orchestrator.registry.service import diff, version_of
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.store import EventStore, StoreError

DEFAULT_URL = "sqlite:///orchestrator.db"
CONFIG_KEY = "orchestrator.config"

database_option = click.option(
    "--database-url",
    envvar="ORCHESTRATOR_DATABASE_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="Event store URL (env ORCHESTRATOR_DATABASE_URL): sqlite:///FILE or postgresql+psycopg://...",
)


@contextmanager
def services(url: str) -> Iterator[Runtime]:
    """Open the store at ``url`` and wire the runtime; store errors become clear messages (exit 2)."""
    config = load_config()
    try:
        store = EventStore.from_url(url)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    try:
        yield build_runtime(store, config)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    finally:
        store.close()


def load_config() -> Config:
    """The configuration named by the group's ``--config`` (or the environment, or ./orchestrator.toml)."""
    context = click.get_current_context(silent=True)
    path = context.find_root().meta.get(CONFIG_KEY) if context is not None else None
    return Config.load(path)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=None))


# ---------------------------------------------------------------------- registry
@click.command("publish")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="State machine name (default: the file name without .json).")
@click.option("--alias", help="Point this alias at the published version.")
@click.option("--description", default="", help="What changed.")
@click.option("--revision", help="The Phabricator revision (D123) this version was reviewed in.")
@database_option
def publish_command(
    file: Path, name: str | None, alias: str | None, description: str, revision: str | None, database_url: str
) -> None:
    """Validate FILE and store it as an immutable, numbered version."""
    from orchestrator.integrations.phabricator import publish_approval  # noqa: PLC0415

    definition = load_json_file(str(file), "definition")
    name = name or file.stem
    revision, approved_by = publish_approval(load_config(), revision)
    with services(database_url) as s:
        version, created = s.registry.publish(
            name,
            definition,
            description=description,
            published_by=actor(),
            revision=revision,
            approved_by=approved_by,
        )
        out: dict[str, Any] = {
            "name": name,
            "version": version.version,
            "sha256": version.sha256,
            "created": created,
        }
        if version.revision:
            out["revision"], out["approvedBy"] = version.revision, version.approved_by
        if alias:
            s.registry.set_alias(name, alias, [(version.version, None)], by=actor())
            out["alias"] = alias
    _echo_json(out)


@click.command("versions")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@database_option
def versions_command(name: str, as_json: bool, database_url: str) -> None:
    """List the versions of state machine NAME and its aliases."""
    with services(database_url) as s:
        machine = s.registry.get(name)
    rows: list[dict[str, Any]] = [
        {
            "version": v.version,
            "sha256": v.sha256,
            "publishedBy": v.published_by,
            "publishedAt": format_seconds(v.published_at),
            "description": v.description,
            "revision": v.revision,
        }
        for v in machine.versions
    ]
    aliases = {a.name: [r.to_json() for r in a.routing] for a in machine.aliases.values()}
    if as_json:
        _echo_json({"name": name, "versions": rows, "aliases": aliases})
        return
    table(
        ["VERSION", "SHA256", "PUBLISHED", "BY", "DESCRIPTION"],
        [
            [
                str(r["version"]),
                str(r["sha256"])[:12],
                str(r["publishedAt"]),
                str(r["publishedBy"]),
                str(r["description"]),
            ]
            for r in rows
        ],
    )
    for alias, routes in sorted(aliases.items()):
        click.echo(f"alias {alias}: " + ", ".join(f"v{r['version']} ({r['weight']}%)" for r in routes))


@click.command("diff")
@click.argument("name")
@click.argument("v1", type=int)
@click.argument("v2", type=int)
@database_option
def diff_command(name: str, v1: int, v2: int, database_url: str) -> None:
    """Structural diff of two versions of NAME (JSON Pointer paths)."""
    with services(database_url) as s:
        machine = s.registry.get(name)
    a, b = version_of(machine, v1), version_of(machine, v2)
    changes = diff(a.definition, b.definition)
    for change in changes:
        line = f"{change['op']:8s} {change['path']}"
        if "old" in change:
            line += f"  - {json.dumps(change['old'])}"
        if "new" in change:
            line += f"  + {json.dumps(change['new'])}"
        click.echo(line)
    if not changes:
        click.echo("no differences")


@click.group("alias")
def alias_group() -> None:
    """Point aliases at versions, or roll them back."""


@alias_group.command("set")
@click.argument("name")
@click.argument("alias")
@click.argument("routes", nargs=-1, required=True)
@database_option
def alias_set(name: str, alias: str, routes: Sequence[str], database_url: str) -> None:
    """Route ALIAS to VERSION, or to two VERSION=WEIGHT (weights sum to 100)."""
    parsed: list[tuple[int, int | None]] = []
    for route in routes:
        version, _, weight = route.partition("=")
        if not version.isdigit() or (weight and not weight.isdigit()):
            raise UsageError(f"bad route {route!r}: expected VERSION or VERSION=WEIGHT")
        parsed.append((int(version), int(weight) if weight else None))
    with services(database_url) as s:
        result = s.registry.set_alias(name, alias, parsed, by=actor())
    _echo_json({"name": name, "alias": alias, "routing": [r.to_json() for r in result]})


@alias_group.command("rollback")
@click.argument("name")
@click.argument("alias")
@database_option
def alias_rollback(name: str, alias: str, database_url: str) -> None:
    """Point ALIAS back at what it pointed at before its last change."""
    with services(database_url) as s:
        result = s.registry.rollback_alias(name, alias, by=actor())
    _echo_json({"name": name, "alias": alias, "routing": [r.to_json() for r in result]})


# ---------------------------------------------------------------------- executions
def _result(loaded: Loaded, *, created: bool | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "execution": loaded.id,
        "status": loaded.status,
        "stateMachine": loaded.meta.get("state_machine"),
        "version": loaded.meta.get("version"),
    }
    if created is not None:
        out["created"] = created
    if loaded.status == "SUCCEEDED":
        out["output"] = loaded.machine.output
    elif loaded.status != "RUNNING":
        out["error"] = loaded.machine.error
        out["cause"] = loaded.machine.cause
    return out


def _wait(s: Runtime, loaded: Loaded) -> Loaded:
    """Run to the end; on a terminal, one self-updating line on stderr (state, elapsed, events).

    Without a terminal nothing but the final JSON is printed (stdout stays machine-readable).
    """
    show = sys.stderr.isatty()
    began = time.monotonic()

    def progress(current: Loaded) -> None:
        if show:
            width = shutil.get_terminal_size((100, 20)).columns
            line = (
                f"{current.status:9s} {_current_state(current) or '-'}  {time.monotonic() - began:6.1f}s  "
                f"{len(current.history)} events, last {current.history[-1].type}"
            )
            click.echo("\r\033[K" + cut(line, max(20, width - 1)), err=True, nl=False)

    done = s.executions.run_until_settled(loaded.id, on_event=progress)
    if show:
        click.echo("\r\033[K", err=True, nl=False)
    return done


def _current_state(loaded: Loaded) -> str:
    """The state the execution is in: the last one entered and not yet exited (top level first)."""
    inside: dict[str, str] = {}
    for event in loaded.history:
        if event.type.endswith("StateEntered"):
            inside[event.scope] = str(event.details.get("name", ""))
        elif event.type.endswith("StateExited"):
            inside.pop(event.scope, None)
    if not inside:
        return ""
    deepest = max(inside, key=len)
    return inside[deepest] if not inside.get("") or deepest == "" else f"{inside['']} > {inside[deepest]}"


@click.command("start")
@click.argument("reference")
@input_options("Execution input")
@click.option("--name", help="Execution name (unique per state machine; default a UUID).")
@click.option("--wait", is_flag=True, help="Run the execution to its end in this process.")
@database_option
def start_command(
    reference: str,
    input_text: str | None,
    input_file: Path | None,
    name: str | None,
    wait: bool,
    database_url: str,
) -> None:
    """Start an execution of NAME, NAME:ALIAS or NAME:VERSION."""
    value = read_input(input_text, input_file)
    with services(database_url) as s:
        loaded, created = s.executions.start(reference, value, name=name, started_by=actor())
        if wait:
            loaded = _wait(s, loaded)
        _echo_json(_result(loaded, created=created))


@click.command("stop")
@click.argument("execution")
@click.option("--error", default=None)
@click.option("--cause", default=None)
@database_option
def stop_command(execution: str, error: str | None, cause: str | None, database_url: str) -> None:
    """Abort a running execution."""
    with services(database_url) as s:
        _echo_json(_result(s.executions.stop(execution, error, cause)))


@click.command("reset")
@click.argument("execution")
@click.option("--to-event", type=int, required=True, help="Start from the state after this event.")
@click.option("--name", help="Name of the new execution.")
@click.option("--wait", is_flag=True)
@database_option
def reset_command(execution: str, to_event: int, name: str | None, wait: bool, database_url: str) -> None:
    """Roll back: a new execution from the state EXECUTION had after event N (EXECUTION is unchanged)."""
    with services(database_url) as s:
        loaded = s.executions.reset(execution, to_event, name=name, by=actor())
        if wait:
            loaded = _wait(s, loaded)
        out = _result(loaded, created=True)
        out["resetFrom"] = {"execution": execution, "event": to_event}
        _echo_json(out)


@click.command("redrive")
@click.argument("execution")
@click.option("--wait", is_flag=True)
@database_option
def redrive_command(execution: str, wait: bool, database_url: str) -> None:
    """Re-run a failed, timed-out or aborted execution from the states that did not succeed."""
    with services(database_url) as s:
        loaded = s.executions.redrive(execution, by=actor())
        if wait:
            loaded = _wait(s, loaded)
        _echo_json(_result(loaded))


@click.group("executions")
def executions_group() -> None:
    """List executions."""


@executions_group.command("list")
@click.option("--state-machine", default=None)
@click.option(
    "--status",
    default=None,
    type=click.Choice(["RUNNING", "SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"], case_sensitive=False),
)
@click.option("--json", "as_json", is_flag=True)
@database_option
def executions_list(state_machine: str | None, status: str | None, as_json: bool, database_url: str) -> None:
    """Executions, newest first."""
    with services(database_url) as s:
        rows = s.executions.list(state_machine=state_machine, status=status)
    if as_json:
        _echo_json(rows)
        return
    table(
        ["EXECUTION", "STATUS", "VERSION", "STARTED", "STOPPED", "BY"],
        [
            [
                r["execution"],
                r["status"],
                str(r["version"]),
                r["startDate"],
                r["stopDate"] or "",
                r["startedBy"],
            ]
            for r in rows
        ],
    )


@click.command("describe")
@click.argument("execution")
@click.option("--json", "as_json", is_flag=True)
@database_option
def describe_command(execution: str, as_json: bool, database_url: str) -> None:
    """Status, version, input, output or error, times and links of EXECUTION."""
    with services(database_url) as s:
        info = s.executions.describe(execution)
    if as_json:
        _echo_json(info)
        return
    width = max(len(k) for k in info)
    for key, value in info.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        click.echo(f"{key:>{width}}  {shown}")


@click.command("history")
@click.argument("execution")
@click.option("--json", "as_json", is_flag=True, help="Events as get-execution-history shows them.")
@click.option("--reverse", is_flag=True, help="Newest first.")
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Keep printing new events until the execution ends (JSON: one per line).",
)
@database_option
def history_command(execution: str, as_json: bool, reverse: bool, follow: bool, database_url: str) -> None:
    """The events of EXECUTION."""
    if follow and reverse:
        raise UsageError("--follow prints events as they happen: it does not go with --reverse")
    with services(database_url) as s:
        events = s.executions.history(execution)
        if follow:
            _follow(s, execution, events, as_json)
            return
    if reverse:
        events.reverse()
    if as_json:
        _echo_json([e.to_aws() for e in events])
        return
    start = min((e.timestamp for e in events), default=0.0)
    table(["ID", "TYPE", "STATE", "ELAPSED", "DETAIL"], [_history_row(e, start) for e in events])


def _follow(s: Runtime, execution: str, events: list[HistoryEvent], as_json: bool) -> None:
    """Print ``events``, then each new one as it is committed, until the execution ends or Ctrl-C."""
    headers = ["ID", "TYPE", "STATE", "ELAPSED", "DETAIL"]
    start = events[0].timestamp if events else 0.0
    rows = [_history_row(e, start) for e in events]
    fitted = column_widths(headers, [*rows, ["00000", "TaskStateEntered", "x" * 16, "00000.000s", ""]])
    if not as_json:
        click.echo(row_text(headers, fitted))
    seen = 0
    try:
        while True:
            position = s.store.last_position()
            loaded = s.executions.load(execution)
            for event in loaded.history[seen:]:
                if as_json:
                    _echo_json(event.to_aws())
                else:
                    click.echo(row_text(_history_row(event, start), fitted))
            seen = len(loaded.history)
            sys.stdout.flush()
            if loaded.status in TERMINAL:
                return
            s.store.wait_for_events(position, 2.0)
    except KeyboardInterrupt:
        return


@click.command("lineage")
@click.argument("execution")
@click.option("--json", "as_json", is_flag=True)
@database_option
def lineage_command(execution: str, as_json: bool, database_url: str) -> None:
    """What caused what: version, trigger, resets, redrives, task runs."""
    with services(database_url) as s:
        info = s.executions.lineage(execution)
    if as_json:
        _echo_json(info)
        return
    v = info["version"]
    click.echo(f"{info['execution']}")
    click.echo(
        f"  definition  {info['stateMachine']} v{v['number']} sha256:{v['sha256'][:12]} "
        f"published by {v['publishedBy'] or '?'} at {v['publishedAt']}"
        + (f" from {v['revision']}" if v["revision"] else "")
    )
    click.echo(
        f"  trigger     started by {info['trigger'].get('startedBy') or '?'}"
        + (f" via alias {info['alias']}" if info["alias"] else "")
    )
    if info["resetFrom"]:
        click.echo(f"  reset from  {info['resetFrom']['execution']} after event {info['resetFrom']['event']}")
    for link in info["resetTo"]:
        click.echo(f"  reset to    {link['execution']} (after event {link['event']})")
    for redrive in info["redrives"]:
        click.echo(f"  redriven    at event {redrive['event']}")
    for task in info["tasks"]:
        click.echo(f"  task        event {task['event']} {task['type']} {task.get('resource', '')}")


def _history_row(event: HistoryEvent, start: float) -> list[str]:
    d = event.details
    detail = ""
    if "error" in d:
        detail = f"{d['error']}: {d.get('cause', '')}"
    elif "output" in d:
        detail = d["output"]
    elif "input" in d:
        detail = d["input"]
    elif "index" in d:
        detail = f"iteration {d['index']}"
    return [str(event.id), event.type, str(d.get("name", "")), f"{event.timestamp - start:.3f}s", detail]


COMMANDS = [
    publish_command,
    versions_command,
    diff_command,
    alias_group,
    start_command,
    stop_command,
    reset_command,
    redrive_command,
    executions_group,
    describe_command,
    history_command,
    lineage_command,
]
