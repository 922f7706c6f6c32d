"""``sipas plan``: a wave's sampling plan from its frame, printed or saved as its quotas."""

from __future__ import annotations

import sys

import click
from sqlalchemy.orm import Session

from survey.cli.common import click_error, load_settings, open_engine


@click.command()
@click.option("--wave", "wave_code", required=True, help="wave code, e.g. 2026")
@click.option(
    "--margin", default=0.05, show_default=True, type=float, help="margin of error per unit (0.05 = 5 points)"
)
@click.option("--response-rate", default=0.6, show_default=True, type=float, help="expected share who answer")
@click.option("--deff", default=1.0, show_default=True, type=float, help="expected design effect")
@click.option(
    "--method",
    type=click.Choice(["proportional", "equal", "power"]),
    default="proportional",
    show_default=True,
    help="allocation of a unit's sample over its fields",
)
@click.option(
    "--frame-from", default=None, help="first month of transactions to plan from (YYYY-MM; default: wave start)"
)
@click.option("--frame-to", default=None, help="last month (YYYY-MM; default: wave end)")
@click.option("--save", is_flag=True, help="save the plan as the wave's quotas (replaces the previous plan)")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True)
def plan(
    wave_code: str,
    margin: float,
    response_rate: float,
    deff: float,
    method: str,
    frame_from: str | None,
    frame_to: str | None,
    save: bool,
    fmt: str,
) -> None:
    """Plan a wave from its frame: per unit Cochran's size, allocated over fields, codes to issue."""
    from datetime import date

    from survey.csvsafe import csv_writer
    from survey.errors import SipasError
    from survey.fieldwork.plans import plan_wave, save_plan

    def month(text: str | None, last: bool) -> date | None:
        if text is None:
            return None
        try:
            year, mon = (int(part) for part in text.split("-"))
            first = date(year, mon, 1)
        except ValueError:
            raise click.BadParameter(f"'{text}' is not a month like 2026-03") from None
        if not last:
            return first
        nxt = date(year + (mon == 12), mon % 12 + 1, 1)
        return date.fromordinal(nxt.toordinal() - 1)

    settings = load_settings()
    engine = open_engine(settings)
    try:
        with Session(engine) as session, session.begin():
            result = plan_wave(
                session,
                wave_code=wave_code,
                margin=margin,
                response_rate=response_rate,
                deff=deff,
                method=method,
                frame_from=month(frame_from, False),
                frame_to=month(frame_to, True),
            )
            if save:
                save_plan(session, result, actor="cli")
    except (SipasError, ValueError) as exc:
        raise click_error(exc) from None
    finally:
        engine.dispose()
    if fmt == "csv":
        writer = csv_writer(sys.stdout)
        writer.writerow(["unit", "field", "transactions", "target", "codes_to_issue", "probability"])
        for r in result.rows:
            writer.writerow([r.unit_code, r.field_code, r.population, r.target, r.codes_to_issue, r.probability])
    else:
        click.echo(
            f"Wave {result.wave_code}: frame {result.frame_from} to {result.frame_to}, margin ±{margin * 100:g} "
            f"points at {result.level:.0%}, response rate {response_rate:.0%}, deff {deff:g}, {method}"
        )
        click.echo(f"{'unit':10} {'field':16} {'transactions':>12} {'target':>7} {'codes':>7} {'p(offer)':>9}")
        for r in result.rows:
            click.echo(
                f"{r.unit_code:10} {r.field_code:16} {r.population:>12,} {r.target:>7} {r.codes_to_issue:>7} "
                f"{r.probability:>9.4f}"
            )
        click.echo(f"total target {result.total_target:,} responses in {len(result.rows)} strata")
    if result.units_without_frame:
        click.echo(
            f"units without transactions in the frame (not planned): {', '.join(result.units_without_frame)}", err=True
        )
    if save:
        click.echo(f"saved as the quotas of wave {result.wave_code}", err=True)
