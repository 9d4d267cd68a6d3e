"""``orchestrator tokens``: create, list and revoke the API tokens of ``orchestrator serve``.

``create`` prints the token once (on stdout, alone, so ``$(orchestrator tokens create ...)`` captures
it); only its SHA-256 is stored. ``list`` never shows secrets. Every change is an event recording who
made it (``ORCHESTRATOR_ACTOR`` or ``USER``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from orchestrator.api.tokens import ROLES, TokenInfo, Tokens, parse_duration
from orchestrator.cli.durable import database_option, services
from orchestrator.cli.inputs import actor
from orchestrator.cli.tables import table


@click.group("tokens")
def tokens_group() -> None:
    """API tokens for the HTTP API and the web UI (viewer, operator, admin)."""


@tokens_group.command("create")
@click.option(
    "--role", required=True, type=click.Choice(ROLES), help="viewer reads; operator acts; admin publishes."
)
@click.option("--owner", required=True, help="Who the token is for: recorded with every action it takes.")
@click.option("--expires-in", default=None, help="Stop working after this long: 90s, 30m, 12h, 30d, 2w.")
@click.option("--json", "as_json", is_flag=True, help="Print {id, role, owner, token, expiresAt} as JSON.")
@database_option
def create_command(role: str, owner: str, expires_in: str | None, as_json: bool, database_url: str) -> None:
    """Create a token and print it once; store only its hash."""
    expiry = parse_duration(expires_in) if expires_in is not None else None
    with services(database_url) as runtime:
        token, info = Tokens(runtime.store).create(role, owner, by=actor(), expires_in=expiry)
    if as_json:
        out = {
            "id": info.id,
            "role": info.role,
            "owner": info.owner,
            "token": token,
            "expiresAt": info.expires_at,
        }
        click.echo(json.dumps(out))
    else:
        click.echo(token)
        click.echo(
            f"token {info.id} for {info.owner} ({info.role}); it is shown only now: keep it secret.", err=True
        )


@tokens_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@database_option
def list_command(as_json: bool, database_url: str) -> None:
    """Every token (never its secret), revoked ones included."""
    with services(database_url) as runtime:
        infos = Tokens(runtime.store).list()
    if as_json:
        click.echo(json.dumps([i.to_json() for i in infos]))
        return
    now = datetime.now(UTC)
    table(
        ["ID", "ROLE", "OWNER", "CREATED", "STATUS"],
        [[i.id, i.role, i.owner, i.created_at, _status(i, now)] for i in infos],
    )


def _status(info: TokenInfo, now: datetime) -> str:
    if info.revoked_at:
        return f"revoked {info.revoked_at} by {info.revoked_by}"
    if info.expires_at:
        return f"{'expired' if info.expired(now) else 'expires'} {info.expires_at}"
    return "active"


@tokens_group.command("revoke")
@click.argument("token_id")
@database_option
def revoke_command(token_id: str, database_url: str) -> None:
    """Revoke the token TOKEN_ID (as `tokens list` shows it): it stops working at once."""
    with services(database_url) as runtime:
        info = Tokens(runtime.store).revoke(token_id, by=actor())
    click.echo(json.dumps(info.to_json()))
