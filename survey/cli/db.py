"""``sipas db upgrade``: migrate the database to the newest schema."""

from __future__ import annotations

import click
from sqlalchemy.engine import make_url

from survey.cli.common import load_settings


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database named by SIPAS_DATABASE_URL to the newest schema."""
    from survey.db.engine import migrate

    settings = load_settings()
    migrate(settings.database_url)
    click.echo(f"database at {make_url(settings.database_url).render_as_string(hide_password=True)} is up to date")
