"""``sipas frame import``: the sampling frame (transaction counts) from a one-stop system's export."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session

from survey.cli.common import load_settings, open_engine


@click.group()
def frame() -> None:
    """The sampling frame: monthly transaction counts per unit and procedure field."""


def _month_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    from survey.fieldwork.frames import parse_month

    if value is None:
        return None
    try:
        return parse_month(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@frame.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--from", "period_from", callback=_month_option, help="first month allowed, e.g. 2026-01")
@click.option("--to", "period_to", callback=_month_option, help="last month allowed, e.g. 2026-12")
def frame_import(file: Path, period_from: Any, period_to: Any) -> None:
    """Import transaction counts from a one-stop system's CSV or XLSX export, all rows or none.

    Columns (Vietnamese or English headings): Mã đơn vị / unit_code, Mã lĩnh vực / field_code,
    Kỳ or Tháng / period (2026-03 or 03/2026), Số hồ sơ / transactions. A count already stored for
    the same unit, field and month is replaced.
    """
    from survey.fieldwork.frames import FrameImportError, import_frame, read_frame_file

    settings = load_settings()
    try:
        rows = read_frame_file(file)
        engine = open_engine(settings)
        try:
            with Session(engine) as session:
                report = import_frame(
                    session,
                    rows=rows,
                    source_name=file.name,
                    actor="cli",
                    period_from=period_from,
                    period_to=period_to,
                )
        finally:
            engine.dispose()
    except FrameImportError as exc:
        n = len(exc.errors)
        click.echo(f"{file.name} was not imported ({n} problem{'s' if n != 1 else ''}; nothing was written):", err=True)
        for error in exc.errors:
            click.echo(f"  {error}", err=True)
        sys.exit(1)
    click.echo(f"imported {report.rows} rows ({report.replaced} replaced)")
