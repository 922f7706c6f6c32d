"""``sipas user``: staff accounts from the command line (create, set a password, list)."""

from __future__ import annotations

import sys

import click
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.cli.common import load_settings, open_engine
from survey.db.models import Role


@click.group()
def user() -> None:
    """Staff accounts: administrators, officers and leaders, each seeing one unit's subtree."""


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("no password on standard input")
        return password
    password = click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")
    return str(password)


@user.command("create")
@click.option("--username", required=True, help="3 to 40 characters: a-z, digits, '.', '-', '_'")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--unit", "unit_code", required=True, help="code of the unit whose subtree the account sees, e.g. TN")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of standard input")
def user_create(username: str, role: str, unit_code: str, password_stdin: bool) -> None:
    """Create a staff account; the password is asked for (hidden, twice) unless --password-stdin."""
    from survey.auth.passwords import MIN_LENGTH, POLICY, WeakPassword
    from survey.auth.services import create_user
    from survey.db.models import Unit, pk
    from survey.errors import SipasError

    settings = load_settings()
    engine = open_engine(settings)
    try:
        with Session(engine, expire_on_commit=False) as session:
            unit = session.scalars(select(Unit).where(col(Unit.code) == unit_code)).first()
            if unit is None:
                raise click.ClickException(f"no unit with code '{unit_code}'")
            password = _read_password(password_stdin)
            try:
                account = create_user(
                    session, username=username, password=password, role=role, unit_id=pk(unit), actor="cli"
                )
            except SipasError as exc:
                hint = f" ({POLICY.format(min=MIN_LENGTH)})" if isinstance(exc, WeakPassword) else ""
                raise click.ClickException(f"{exc.message}{hint}") from None
            session.commit()
    finally:
        engine.dispose()
    click.echo(f"created {account.username} ({account.role}) for {unit.code} {unit.name_vi}")


@user.command("set-password")
@click.option("--username", required=True)
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of standard input")
def user_set_password(username: str, password_stdin: bool) -> None:
    """Give an account a new password (its open sessions end)."""
    from survey.auth.passwords import MIN_LENGTH, POLICY
    from survey.auth.services import normalise_username, set_password
    from survey.db.models import User, pk
    from survey.errors import SipasError

    settings = load_settings()
    engine = open_engine(settings)
    try:
        with Session(engine) as session:
            account = session.scalars(select(User).where(col(User.username) == normalise_username(username))).first()
            if account is None:
                raise click.ClickException(f"no account named '{username}'")
            password = _read_password(password_stdin)
            try:
                set_password(session, user_id=pk(account), password=password, actor="cli")
            except SipasError as exc:
                raise click.ClickException(f"{exc.message} ({POLICY.format(min=MIN_LENGTH)})") from None
            session.commit()
    finally:
        engine.dispose()
    click.echo(f"new password set for {normalise_username(username)}")


@user.command("two-step-off")
@click.option("--username", required=True)
def user_two_step_off(username: str) -> None:
    """Turn an account's second factor off (a lost phone); the account enrols again from its account page."""
    from survey.auth import second_factor
    from survey.auth.services import normalise_username
    from survey.db.models import User, pk

    settings = load_settings()
    engine = open_engine(settings)
    try:
        with Session(engine) as session:
            account = session.scalars(select(User).where(col(User.username) == normalise_username(username))).first()
            if account is None:
                raise click.ClickException(f"no account named '{username}'")
            was_on = second_factor.enabled(account)
            second_factor.disable(session, user_id=pk(account), actor="cli", actor_id=None)
            session.commit()
    finally:
        engine.dispose()
    click.echo(f"two-step sign-in {'turned off' if was_on else 'was not on'} for {normalise_username(username)}")


@user.command("list")
def user_list() -> None:
    """Every staff account with its role, unit and state."""
    from survey.db.models import Unit, User

    settings = load_settings()
    engine = open_engine(settings)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(User, Unit).join(Unit, col(Unit.id) == col(User.unit_id)).order_by(col(User.username))
            ).all()
    finally:
        engine.dispose()
    click.echo(f"{'username':24} {'role':8} {'unit':10} {'state':11} created")
    for account, unit in rows:
        state = "active" if account.active else "deactivated"
        click.echo(
            f"{account.username:24} {account.role:8} {unit.code:10} {state:11} {account.created_at:%Y-%m-%d %H:%M} UTC"
        )
    if not rows:
        click.echo("(no accounts yet: create one with 'sipas user create')", err=True)
