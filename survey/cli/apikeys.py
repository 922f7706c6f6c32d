"""``sipas apikey``: API keys for one-stop systems and BI tools (create, list, revoke)."""

from __future__ import annotations

import click
from sqlalchemy.orm import Session

from survey.cli.common import click_error, load_settings, open_engine
from survey.errors import SipasError


@click.group()
def apikey() -> None:
    """API keys for one-stop systems and BI tools (each scoped to a unit subtree)."""


@apikey.command("create")
@click.option("--name", required=True, help="who uses it, e.g. 'One-stop system, Hòa Thành'")
@click.option("--unit", "unit_code", required=True, help="the unit whose subtree the key may act on")
@click.option(
    "--scope", "scopes", multiple=True, type=click.Choice(["issue", "read"]), default=("issue",), show_default=True
)
def apikey_create(name: str, unit_code: str, scopes: tuple[str, ...]) -> None:
    """Create a key and print it once (only its hash is kept)."""
    from survey.api.keys import create_api_key

    engine = open_engine(load_settings())
    try:
        with Session(engine) as session, session.begin():
            key = create_api_key(session, name=name, unit_code=unit_code, scopes=scopes, actor="cli")
    except SipasError as exc:
        raise click_error(exc) from None
    finally:
        engine.dispose()
    click.echo(key.secret)
    click.echo(f"key {key.prefix} created; this is the only time it is shown: store it now", err=True)


@apikey.command("list")
def apikey_list() -> None:
    """Keys with their prefix, unit, scopes, last use and state."""
    from survey.api.keys import list_api_keys

    engine = open_engine(load_settings())
    try:
        with Session(engine) as session:
            rows = list_api_keys(session)
    finally:
        engine.dispose()
    click.echo(f"{'prefix':9} {'unit':10} {'scopes':11} {'last used':10} {'state':8} name")
    for key, unit in rows:
        state = "revoked" if key.revoked_at else "active"
        used = key.last_used_on.isoformat() if key.last_used_on else "never"
        click.echo(f"{key.prefix:9} {unit.code:10} {key.scopes:11} {used:10} {state:8} {key.name}")


@apikey.command("revoke")
@click.argument("prefix")
def apikey_revoke(prefix: str) -> None:
    """Revoke a key at once: its next request gets 401."""
    from survey.api.keys import revoke_api_key

    engine = open_engine(load_settings())
    try:
        with Session(engine) as session, session.begin():
            revoke_api_key(session, prefix=prefix, actor="cli")
    except SipasError as exc:
        raise click_error(exc) from None
    finally:
        engine.dispose()
    click.echo(f"key {prefix} revoked")
