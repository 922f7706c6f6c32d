"""``sipas qr``: QR images of counter posters and of freshly issued receipt codes."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.cli.common import load_settings, open_engine
from survey.csvsafe import csv_writer


@click.group()
def qr() -> None:
    """QR codes for counter posters and receipt codes (SVG or PNG)."""


@qr.command("counter")
@click.argument("service_point_code")
@click.option("--format", "fmt", type=click.Choice(["svg", "png"]), default="svg", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
def qr_counter(service_point_code: str, fmt: str, output: Path) -> None:
    """The QR code of one counter's poster."""
    from survey.db.models import ServicePoint
    from survey.receipts.qr import write_qr

    settings = load_settings()
    engine = open_engine(settings)
    with Session(engine) as session:
        point = session.scalars(select(ServicePoint).where(col(ServicePoint.code) == service_point_code)).first()
        if point is None:
            raise click.ClickException(f"no counter with code '{service_point_code}'")
        url_ = f"{settings.public_url}/c/{point.counter_token}"
    engine.dispose()
    write_qr(url_, output, fmt)
    click.echo(f"{output}: {url_}")


@qr.command("receipts")
@click.option("--wave", "wave_code", required=True, help="wave code, e.g. 2026")
@click.option("--unit", "unit_code", required=True, help="unit code, e.g. STP")
@click.option("--field", "field_code", default=None, help="procedure field code, e.g. land")
@click.option("-n", "--count", default=10, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--format", "fmt", type=click.Choice(["svg", "png"]), default="svg", show_default=True)
@click.option("-o", "--output-dir", type=click.Path(path_type=Path), required=True)
def qr_receipts(wave_code: str, unit_code: str, field_code: str | None, count: int, fmt: str, output_dir: Path) -> None:
    """Issue COUNT one-time receipt codes and write one QR image each, plus codes.csv for the one-stop system."""
    from survey.db.audited import issue_receipt_codes
    from survey.db.models import ProcedureField, Unit
    from survey.errors import SipasError
    from survey.receipts.codes import pretty
    from survey.receipts.qr import write_qr

    settings = load_settings()
    engine = open_engine(settings)
    try:
        with Session(engine) as session, session.begin():
            unit = session.scalars(select(Unit).where(col(Unit.code) == unit_code)).first()
            if unit is None or unit.id is None:
                raise click.ClickException(f"no unit with code '{unit_code}'")
            field_id = None
            if field_code:
                fld = session.scalars(select(ProcedureField).where(col(ProcedureField.code) == field_code)).first()
                if fld is None:
                    raise click.ClickException(f"no procedure field with code '{field_code}'")
                field_id = fld.id
            try:
                fresh = issue_receipt_codes(
                    session,
                    wave_code=wave_code,
                    unit_id=unit.id,
                    field_id=field_id,
                    count=count,
                    valid_days=settings.receipt_code_valid_days,
                    actor="cli",
                )
            except SipasError as exc:
                raise click.ClickException(exc.message) from None
            output_dir.mkdir(parents=True, exist_ok=True)
            with (output_dir / "codes.csv").open("w", newline="", encoding="utf-8") as fh:
                writer = csv_writer(fh)
                writer.writerow(["code", "url", "image"])
                for c in fresh:
                    link = f"{settings.public_url}/r/{c}"
                    image = output_dir / f"{c}.{fmt}"
                    write_qr(link, image, fmt)
                    writer.writerow([pretty(c), link, image.name])
    finally:
        engine.dispose()
    click.echo(f"{count} codes written to {output_dir} (codes.csv lists them; only their hashes are stored)")
