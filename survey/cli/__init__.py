"""The ``sipas`` command: run the platform, migrate, load the demo, check questionnaires, make QR codes."""

from __future__ import annotations

import click

from survey.cli.apikeys import apikey
from survey.cli.db import db
from survey.cli.demo import demo
from survey.cli.fieldwork import quota, simulate
from survey.cli.frames import frame
from survey.cli.integrity import integrity
from survey.cli.plans import plan
from survey.cli.qr import qr
from survey.cli.questionnaires import questionnaire
from survey.cli.results import score
from survey.cli.serve import serve
from survey.cli.users import user

# Every command and group of the modules beside this one; tests/survey/cli/test_cli.py fails on one left out.
COMMANDS: tuple[click.Command, ...] = (
    apikey,
    db,
    demo,
    frame,
    integrity,
    plan,
    qr,
    questionnaire,
    quota,
    score,
    serve,
    simulate,
    user,
)


@click.group(help=__doc__, commands=COMMANDS)
def main() -> None:
    pass
