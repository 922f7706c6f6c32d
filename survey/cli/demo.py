"""``sipas demo``: an embedded database with the demo province, its addresses and accounts, then the server."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy.engine import make_url

from survey.cli.common import load_settings


@click.command()
@click.option("--reset", is_flag=True, help="delete the embedded database file first")
@click.option("--seed", default=2026, show_default=True, type=int)
@click.option("--responses", default=50_000, show_default=True, type=int)
@click.option("--serve/--no-serve", "then_serve", default=True, show_default=True, help="start the server afterwards")
@click.option("--port", default=8000, show_default=True, type=int)
def demo(reset: bool, seed: int, responses: int, then_serve: bool, port: int) -> None:
    """Create and migrate the embedded database, load the demo province, print the addresses, serve."""
    from survey.db.engine import make_engine, migrate
    from survey.demo.load import is_loaded, load_demo

    settings = load_settings()
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
                "",
                f"Staff pages: {settings.public_url}/login (the database keeps only the passwords' hashes):",
                *[f"  {name:12} {pw}   ({role} · {unit})" for name, role, unit, pw in summary.accounts],
                "",
                "League tables with intervals and rank intervals (in another terminal):",
                f"  .venv/bin/sipas score --wave {summary.current_wave} --level district "
                f"--compare-with {summary.previous_wave}",
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
