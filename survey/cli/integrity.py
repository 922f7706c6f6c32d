"""``sipas integrity scan WAVE``: flag suspect responses of a wave (kept, never deleted), alert the level above."""

from __future__ import annotations

import click
from sqlalchemy.orm import Session

from survey.cli.common import click_error, load_settings, open_engine
from survey.errors import SipasError


@click.group()
def integrity() -> None:
    """Integrity of ratings: detect stuffed or automated responses."""


@integrity.command("scan")
@click.argument("wave_code")
def integrity_scan(wave_code: str) -> None:
    """Flag bursts, answers outside opening hours, repeated identical answers and receipt codes issued beyond
    the frame in WAVE_CODE; alert the level above; report jumps."""
    from survey.integrity.services import scan_wave

    settings = load_settings()
    engine = open_engine(settings)
    try:
        with Session(engine) as session, session.begin():
            result = scan_wave(session, wave_code=wave_code, settings=settings, actor="cli")
    except (SipasError, ValueError) as exc:
        raise click_error(exc) from None
    finally:
        engine.dispose()
    click.echo(
        f"Wave {result.wave_code}: {result.responses} responses scanned, flags changed on {result.changed}, "
        f"{result.reviewed_kept} cleared by review left alone, {result.alerts} new alerts to the level above"
    )
    for reason, count in result.by_reason.items():
        click.echo(f"  {reason.lower():18} {count:>8}")
    for jump in result.jumps:
        click.echo(
            f"  jump: unit {jump.unit_code} week of {jump.week_start}: {jump.p1:.0%} (n={jump.n1}) -> "
            f"{jump.p2:.0%} (n={jump.n2}), z={jump.z:.1f}, p={jump.p_value:.1g}"
        )
