"""``sipas quota`` and ``sipas simulate``: a wave's quota progress, and demo fieldwork."""

from __future__ import annotations

import sys
import time

import click
from sqlalchemy.orm import Session

from survey.cli.common import click_error, load_settings, open_engine
from survey.csvsafe import csv_writer
from survey.errors import SipasError


@click.command()
@click.argument("wave_code")
@click.option("--by", type=click.Choice(["unit", "stratum"]), default="unit", show_default=True)
@click.option("--unit", "unit_code", default=None, help="only this unit's subtree")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True)
@click.option("--watch", type=float, default=None, help="redraw every this many seconds (Ctrl-C to stop)")
def quota(wave_code: str, by: str, unit_code: str | None, fmt: str, watch: float | None) -> None:
    """Quota progress of a wave: target, achieved, expected by today, response rate and status."""
    from sqlalchemy import select
    from sqlmodel import col

    from survey.db.models import Unit
    from survey.fieldwork.progress import wave_progress

    settings = load_settings()
    engine = open_engine(settings)
    try:
        while True:
            with Session(engine) as session:
                path = "/"
                if unit_code:
                    found = session.scalar(select(col(Unit.path)).where(col(Unit.code) == unit_code))
                    if found is None:
                        raise click.ClickException(f"No unit with code '{unit_code}'.")
                    path = found
                progress = wave_progress(session, wave_code=wave_code, today=settings.today(), unit_path=path)
            if watch:
                click.clear()
            _print_progress(progress, by, fmt)
            if not watch:
                break
            time.sleep(watch)
    except SipasError as exc:
        raise click_error(exc) from None
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _print_progress(progress: object, by: str, fmt: str) -> None:
    from survey.fieldwork.progress import WaveProgress

    assert isinstance(progress, WaveProgress)
    if fmt == "csv":
        writer = csv_writer(sys.stdout)
        if by == "stratum":
            writer.writerow(
                [
                    "unit",
                    "field",
                    "transactions",
                    "target",
                    "achieved",
                    "flagged",
                    "expected_by_now",
                    "codes_issued",
                    "receipt_responses",
                    "response_rate",
                    "status",
                ]
            )
            for s in progress.strata:
                writer.writerow(
                    [
                        s.unit_code,
                        s.field_code,
                        s.population,
                        s.target,
                        s.achieved,
                        s.flagged,
                        round(s.expected_by_now, 1),
                        s.codes_issued,
                        s.receipt_responses,
                        "" if s.response_rate is None else round(s.response_rate, 4),
                        s.status.label,
                    ]
                )
        else:
            writer.writerow(
                [
                    "unit",
                    "transactions",
                    "target",
                    "achieved",
                    "expected_by_now",
                    "codes_issued",
                    "receipt_responses",
                    "response_rate",
                    "coverage",
                    "status",
                ]
            )
            for u in progress.units:
                writer.writerow(
                    [
                        u.unit_code,
                        u.population,
                        u.target,
                        u.achieved,
                        round(u.expected_by_now, 1),
                        u.codes_issued,
                        u.receipt_responses,
                        "" if u.response_rate is None else round(u.response_rate, 4),
                        "" if u.coverage is None else round(u.coverage, 6),
                        u.status.label,
                    ]
                )
        return
    click.echo(
        f"Wave {progress.wave_code} on {progress.today}: {progress.elapsed_share:.0%} of the period elapsed; "
        f"{progress.achieved:,} of {progress.target:,} planned responses"
    )
    if by == "stratum":
        click.echo(
            f"{'unit':10} {'field':16} {'target':>7} {'achieved':>8} {'expected':>8} {'codes':>6} "
            f"{'resp.rate':>9} status"
        )
        for s in progress.strata:
            click.echo(
                f"{s.unit_code:10} {s.field_code:16} {s.target:>7} {s.achieved:>8} {s.expected_by_now:>8.0f} "
                f"{s.codes_issued:>6} {_rate(s.response_rate):>9} {s.status.label}"
            )
    else:
        click.echo(f"{'unit':10} {'target':>7} {'achieved':>8} {'expected':>8} {'codes':>6} {'resp.rate':>9} status")
        for u in progress.units:
            click.echo(
                f"{u.unit_code:10} {u.target:>7} {u.achieved:>8} {u.expected_by_now:>8.0f} {u.codes_issued:>6} "
                f"{_rate(u.response_rate):>9} {u.status.label}"
            )
    counts = ", ".join(f"{status.label} {n}" for status, n in progress.counts().items() if n)
    click.echo(f"strata: {counts or 'none planned'}")
    if progress.unplanned_responses:
        click.echo(f"{progress.unplanned_responses:,} responses in strata without a quota (kept and weighted)")


@click.command()
@click.argument("wave_code")
@click.option("--transactions", default=500, show_default=True, type=click.IntRange(1, 200_000))
@click.option("--response-rate", default=0.6, show_default=True, type=click.FloatRange(0, 1))
@click.option("--seed", default=None, type=int, help="for a repeatable run")
def simulate(wave_code: str, transactions: int, response_rate: float, seed: int | None) -> None:
    """Demo fieldwork: transactions are asked about through the issuing service and some citizens answer."""
    from survey.fieldwork.simulate import simulate_arrivals

    settings = load_settings()
    engine = open_engine(settings)
    try:
        result = simulate_arrivals(
            engine,
            settings,
            wave_code=wave_code,
            transactions=transactions,
            response_rate=response_rate,
            seed=seed if seed is not None else int(time.time()),
        )
    except SipasError as exc:
        raise click_error(exc) from None
    finally:
        engine.dispose()
    click.echo(
        f"{result.transactions:,} transactions, {result.selected:,} offered a code, {result.answered:,} answered; "
        f"see 'sipas quota {wave_code}'"
    )
