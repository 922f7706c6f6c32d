"""The ``sipas`` command: run the platform, migrate, load the demo, check questionnaires, make QR codes."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.settings import Settings, get_settings


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        # Only the validators' messages: pydantic's full text quotes the input, which may hold a password.
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise click.ClickException(f"invalid settings: {problems.replace('Value error, ', '')}") from None


@click.group(help=__doc__)
def main() -> None:
    pass


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database named by SIPAS_DATABASE_URL to the newest schema."""
    from survey.db.engine import migrate

    settings = _settings()
    migrate(settings.database_url)
    click.echo(f"database at {make_url(settings.database_url).render_as_string(hide_password=True)} is up to date")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="worker processes (stateless)")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the platform (migrating the database first)."""
    import uvicorn

    from survey.db.engine import migrate

    settings = _settings()
    migrate(settings.database_url)
    uvicorn.run(
        "survey.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        access_log=False,
    )


@main.command()
@click.option("--reset", is_flag=True, help="delete the embedded database file first")
@click.option("--seed", default=2026, show_default=True, type=int)
@click.option("--responses", default=50_000, show_default=True, type=int)
@click.option("--serve/--no-serve", "then_serve", default=True, show_default=True, help="start the server afterwards")
@click.option("--port", default=8000, show_default=True, type=int)
def demo(reset: bool, seed: int, responses: int, then_serve: bool, port: int) -> None:
    """Create and migrate the embedded database, load the demo province, print the addresses, serve."""
    from survey.db.engine import make_engine, migrate
    from survey.demo import is_loaded, load_demo

    settings = _settings()
    url = make_url(settings.database_url)
    if reset:
        if url.get_backend_name() != "sqlite" or not url.database:
            raise click.ClickException("--reset only deletes an embedded SQLite database")
        for suffix in ("", "-wal", "-shm"):
            Path(url.database + suffix).unlink(missing_ok=True)
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        if is_loaded(engine):
            click.echo("The database already holds data; the demo was not loaded again (use --reset to start over).")
            links_file = Path(url.database or "").with_name("demo-links.txt") if url.database else None
            if links_file and links_file.exists():
                click.echo(links_file.read_text(encoding="utf-8"))
        else:
            click.echo(f"Loading the demo province (seed {seed}, {responses:,} responses)...")
            summary = load_demo(engine, settings, seed=seed, responses=responses)
            lines = [
                f"Loaded {summary.units} units, {summary.service_points} counters, "
                f"{summary.frame_rows:,} frame counts, {summary.responses:,} responses and "
                f"{summary.receipt_codes:,} receipt codes in {summary.seconds:.1f} s.",
                "",
                "Answer the survey with a receipt code (each works once):",
                *[f"  {url_}   ({name})" for name, url_ in summary.receipt_links],
                "",
                "Or as at a counter (quick rating):",
                *[f"  {url_}   ({name})" for name, url_ in summary.counter_links],
                "",
                f"Type a code by hand: {settings.public_url}/",
            ]
            text = "\n".join(lines)
            click.echo(text)
            if url.get_backend_name() == "sqlite" and url.database:
                Path(url.database).with_name("demo-links.txt").write_text(text + "\n", encoding="utf-8")
    finally:
        engine.dispose()
    if then_serve:
        import uvicorn

        click.echo(f"\nServing on {settings.public_url} (Ctrl+C to stop)")
        uvicorn.run("survey.app:create_app", factory=True, host="127.0.0.1", port=port, access_log=False)


@main.group()
def questionnaire() -> None:
    """Questionnaire files."""


@questionnaire.command("check")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path), required=True)
def questionnaire_check(files: tuple[Path, ...]) -> None:
    """Validate questionnaire files; print each problem with its file and item."""
    from survey.errors import QuestionnaireError
    from survey.questionnaire import load_file

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


@main.group()
def qr() -> None:
    """QR codes for counter posters and receipt codes (SVG or PNG)."""


@qr.command("counter")
@click.argument("service_point_code")
@click.option("--format", "fmt", type=click.Choice(["svg", "png"]), default="svg", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
def qr_counter(service_point_code: str, fmt: str, output: Path) -> None:
    """The QR code of one counter's poster."""
    from survey.db.engine import make_engine
    from survey.db.models import ServicePoint
    from survey.qr import write_qr

    settings = _settings()
    engine = make_engine(settings.database_url)
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
    from survey.catalog import issue_receipt_codes
    from survey.codes import pretty
    from survey.db.engine import make_engine
    from survey.db.models import ProcedureField, Unit
    from survey.errors import SipasError
    from survey.qr import write_qr

    settings = _settings()
    engine = make_engine(settings.database_url)
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
                writer = csv.writer(fh)
                writer.writerow(["code", "url", "image"])
                for c in fresh:
                    link = f"{settings.public_url}/r/{c}"
                    image = output_dir / f"{c}.{fmt}"
                    write_qr(link, image, fmt)
                    writer.writerow([pretty(c), link, image.name])
    finally:
        engine.dispose()
    click.echo(f"{count} codes written to {output_dir} (codes.csv lists them; only their hashes are stored)")
