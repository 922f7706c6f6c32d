"""``sipas questionnaire check``: validate questionnaire files."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group()
def questionnaire() -> None:
    """Questionnaire files."""


@questionnaire.command("check")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path), required=True)
def questionnaire_check(files: tuple[Path, ...]) -> None:
    """Validate questionnaire files; print each problem with its file and item."""
    from survey.errors import QuestionnaireError
    from survey.questionnaires.spec import load_file

    failed = False
    for path in files:
        try:
            spec = load_file(path)
        except QuestionnaireError as exc:
            failed = True
            click.echo(f"error: {exc}", err=True)
        else:
            click.echo(f"ok: {path} ({spec.code} v{spec.version}, {len(spec.items)} items)")
    if failed:
        sys.exit(1)
