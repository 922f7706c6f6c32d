"""What the ``sipas`` commands share: the settings, an engine on an up-to-date database, an error for click."""

from __future__ import annotations

import click
from pydantic import ValidationError
from sqlalchemy import Engine

from survey.settings import Settings, get_settings


def load_settings() -> Settings:
    """The platform's settings, or a message naming each invalid one (never its value)."""
    try:
        return get_settings()
    except ValidationError as exc:
        # Only the validators' messages: pydantic's full text quotes the input, which may hold a password.
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise click.ClickException(f"invalid settings: {problems.replace('Value error, ', '')}") from None


def open_engine(settings: Settings) -> Engine:
    """An engine on an up-to-date database, or a clear message saying what to run."""
    from survey.db.engine import make_engine, schema_problem

    engine = make_engine(settings.database_url)
    try:
        problem = schema_problem(engine)
    except Exception as exc:
        engine.dispose()
        raise click.ClickException(f"cannot open the database: {exc.__class__.__name__}: {exc}") from None
    if problem:
        engine.dispose()
        raise click.ClickException(problem)
    return engine


def click_error(exc: Exception) -> click.ClickException:
    """A platform error (or a ValueError) as the one-line message click prints before exiting with status 1."""
    return click.ClickException(getattr(exc, "message", None) or str(exc))
