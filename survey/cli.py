"""The ``sipas`` command: run the platform, migrate, load the demo, check questionnaires, make QR codes."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.db.models import Role
from survey.settings import Settings, get_settings


def _engine(settings: Settings) -> Engine:
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


@main.group()
def user() -> None:
    """Staff accounts: administrators, officers and leaders, each seeing one unit's subtree."""


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("no password on standard input")
        return password
    password = click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")
    return str(password)


@user.command("create")
@click.option("--username", required=True, help="3 to 40 characters: a-z, digits, '.', '-', '_'")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--unit", "unit_code", required=True, help="code of the unit whose subtree the account sees, e.g. TN")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of standard input")
def user_create(username: str, role: str, unit_code: str, password_stdin: bool) -> None:
    """Create a staff account; the password is asked for (hidden, twice) unless --password-stdin."""
    from survey.auth.passwords import MIN_LENGTH, POLICY, WeakPassword
    from survey.auth.services import create_user
    from survey.db.models import Unit, pk
    from survey.errors import SipasError

    settings = _settings()
    engine = _engine(settings)
    try:
        with Session(engine, expire_on_commit=False) as session:
            unit = session.scalars(select(Unit).where(col(Unit.code) == unit_code)).first()
            if unit is None:
                raise click.ClickException(f"no unit with code '{unit_code}'")
            password = _read_password(password_stdin)
            try:
                account = create_user(
                    session, username=username, password=password, role=role, unit_id=pk(unit), actor="cli"
                )
            except SipasError as exc:
                hint = f" ({POLICY.format(min=MIN_LENGTH)})" if isinstance(exc, WeakPassword) else ""
                raise click.ClickException(f"{exc.message}{hint}") from None
            session.commit()
    finally:
        engine.dispose()
    click.echo(f"created {account.username} ({account.role}) for {unit.code} {unit.name_vi}")


@user.command("set-password")
@click.option("--username", required=True)
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of standard input")
def user_set_password(username: str, password_stdin: bool) -> None:
    """Give an account a new password (its open sessions end)."""
    from survey.auth.passwords import MIN_LENGTH, POLICY
    from survey.auth.services import normalise_username, set_password
    from survey.db.models import User, pk
    from survey.errors import SipasError

    settings = _settings()
    engine = _engine(settings)
    try:
        with Session(engine) as session:
            account = session.scalars(select(User).where(col(User.username) == normalise_username(username))).first()
            if account is None:
                raise click.ClickException(f"no account named '{username}'")
            password = _read_password(password_stdin)
            try:
                set_password(session, user_id=pk(account), password=password, actor="cli")
            except SipasError as exc:
                raise click.ClickException(f"{exc.message} ({POLICY.format(min=MIN_LENGTH)})") from None
            session.commit()
    finally:
        engine.dispose()
    click.echo(f"new password set for {normalise_username(username)}")


@user.command("list")
def user_list() -> None:
    """Every staff account with its role, unit and state."""
    from survey.db.models import Unit, User

    settings = _settings()
    engine = _engine(settings)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(User, Unit).join(Unit, col(Unit.id) == col(User.unit_id)).order_by(col(User.username))
            ).all()
    finally:
        engine.dispose()
    click.echo(f"{'username':24} {'role':8} {'unit':10} {'state':11} created")
    for account, unit in rows:
        state = "active" if account.active else "deactivated"
        click.echo(
            f"{account.username:24} {account.role:8} {unit.code:10} {state:11} {account.created_at:%Y-%m-%d %H:%M} UTC"
        )
    if not rows:
        click.echo("(no accounts yet: create one with 'sipas user create')", err=True)


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
    from survey.db.models import ServicePoint
    from survey.qr import write_qr

    settings = _settings()
    engine = _engine(settings)
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
    from survey.db.models import ProcedureField, Unit
    from survey.errors import SipasError
    from survey.qr import write_qr

    settings = _settings()
    engine = _engine(settings)
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


TIER_NAMES = {1: "above", 0: "indistinguishable", -1: "below"}


@main.command()
@click.option("--wave", "wave_code", required=True, help="wave code, e.g. 2026")
@click.option("--level", default="commune", show_default=True, help="unit level to rank (department, district...)")
@click.option("--subtree", is_flag=True, help="score each unit on its whole subtree, not only its own desk")
@click.option("--measure", default="index", show_default=True, help="'index', an element or a criterion id")
@click.option(
    "--aggregation",
    type=click.Choice(["mean_of_elements", "mean_of_items", "pooled"]),
    default="mean_of_elements",
    show_default=True,
)
@click.option(
    "--rank-method", type=click.Choice(["bootstrap", "holm", "joint"]), default="bootstrap", show_default=True
)
@click.option("--min-responses", type=int, default=None, help="rank only units with this many (default: the wave's)")
@click.option("--shrinkage", is_flag=True, help="add a model-based (empirical Bayes) column for small units")
@click.option("--compare-with", "earlier_code", default=None, help="an earlier wave: add each unit's change")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def score(
    wave_code: str,
    level: str,
    subtree: bool,
    measure: str,
    aggregation: str,
    rank_method: str,
    min_responses: int | None,
    earlier_code: str | None,
    shrinkage: bool,
    fmt: str,
) -> None:
    """Print a wave's league table: every unit's index with its 95% interval and rank interval."""
    import json

    import numpy as np

    from survey.errors import SipasError
    from survey.scores import compare_waves, wave_scores

    settings = _settings()
    engine = _engine(settings)
    try:
        options = {
            "level": level,
            "scope": "subtree" if subtree else "own",
            "measure": measure,
            "aggregation": aggregation,
            "rank_method": rank_method,
            "min_responses": min_responses,
        }
        ws = wave_scores(engine, wave_code=wave_code, **options)  # type: ignore[arg-type]
        change = None
        if earlier_code:
            before = wave_scores(engine, wave_code=earlier_code, **options)  # type: ignore[arg-type]
            change = compare_waves(before, ws)
    except SipasError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        engine.dispose()
    lg = ws.league
    shrunk = None
    if shrinkage:
        from scoring.shrinkage import beta_binomial_eb

        j = ws.card.column(ws.measure)
        usable = (ws.card.n[:, j] > 0) & np.isfinite(ws.card.point[:, j])
        n_eff = ws.card.n_eff[usable, j]
        shrunk_fit = beta_binomial_eb(ws.card.point[usable, j] * n_eff, n_eff)
        shrunk = {int(i): k for k, i in enumerate(np.flatnonzero(usable))}
    order = sorted(range(len(ws.units)), key=lambda i: (not lg.ranked[i], lg.rank[i], -ws.estimate(i).point))
    rows: list[dict[str, Any]] = []
    for i in order:
        u, e = ws.units[i], ws.estimate(i)
        rows.append(
            {
                "rank": int(lg.rank[i]) if lg.ranked[i] else None,
                "rank_lower": int(lg.marginal_lower[i]) if lg.ranked[i] else None,
                "rank_upper": int(lg.marginal_upper[i]) if lg.ranked[i] else None,
                "rank_lower_simultaneous": int(lg.simultaneous_lower[i]) if lg.ranked[i] else None,
                "rank_upper_simultaneous": int(lg.simultaneous_upper[i]) if lg.ranked[i] else None,
                "code": u.code,
                "name": u.name_vi,
                "index": round(e.point * 100, 2) if e.n else None,
                "lower": round(e.lower * 100, 2) if e.n and e.lower == e.lower else None,
                "upper": round(e.upper * 100, 2) if e.n and e.upper == e.upper else None,
                "n": e.n,
                "df": e.df,
                "n_eff": round(e.n_eff, 1),
                "tier_target": TIER_NAMES[int(lg.tier_target[i])] if e.n else None,
                "tier_province": TIER_NAMES[int(lg.tier_total[i])] if e.n else None,
                "status": "ranked" if lg.ranked[i] else "insufficient data",
            }
        )
        if shrunk is not None:
            k = shrunk.get(i)
            rows[-1]["model_based_eb"] = None if k is None else round(float(shrunk_fit.posterior_mean[k]) * 100, 2)
        if change is not None:
            ok = bool(np.isfinite(change.lower[i]))
            rows[-1].update(
                {
                    f"change_since_{earlier_code}": round(float(change.diff[i]) * 100, 2) if ok else None,
                    "change_lower": round(float(change.lower[i]) * 100, 2) if ok else None,
                    "change_upper": round(float(change.upper[i]) * 100, 2) if ok else None,
                    "change_significant": bool(change.significant[i]),
                }
            )
    p = ws.province
    header: dict[str, Any] = {
        "wave": ws.wave_code,
        "level": ws.level,
        "scope": ws.scope,
        "measure": ws.measure,
        "aggregation": ws.card.aggregation,
        "interval": f"{ws.card.level:.0%} {ws.card.composite_method}"
        if ws.measure in ("index",) or ws.card.kinds[ws.card.column(ws.measure)] != "criterion"
        else f"{ws.card.level:.0%} {ws.card.method}",
        "rank_method": lg.rank_method,
        "seed": lg.seed,
        "draws": lg.draws,
        "target": round(ws.target * 100, 2),
        "min_responses": ws.min_responses,
        "weighting": ws.weighting,
        "weight_deff_kish": None if ws.weights is None else round(ws.weights.deff_kish, 4),
        "weight_ratio_max_min": None if ws.weights is None else round(ws.weights.ratio, 2),
        "responses": ws.responses,
        "excluded_flagged": ws.excluded_flagged,
        "province": {
            "index": round(p.point * 100, 2),
            "lower": round(p.lower * 100, 2),
            "upper": round(p.upper * 100, 2),
            "n": p.n,
        },
        "generated_at": ws.generated_at.isoformat(timespec="seconds"),
        **(
            {"model_based_eb": shrunk_fit.label, "eb_prior_mean": round(float(shrunk_fit.prior_mean) * 100, 2)}
            if shrunk is not None
            else {}
        ),
    }
    if fmt == "json":
        click.echo(json.dumps({"table": header, "rows": rows}, ensure_ascii=False, indent=2))
        return
    if fmt == "csv":
        import csv as csv_module

        out = sys.stdout
        for key, value in header.items():
            out.write(f"# {key}: {value}\n")
        writer = csv_module.DictWriter(out, fieldnames=list(rows[0]) if rows else ["rank"])
        writer.writeheader()
        writer.writerows(rows)
        return
    click.echo(
        f"Wave {ws.wave_code}, level {ws.level} ({ws.scope}), {ws.measure} ({ws.card.aggregation}); "
        f"province {p.point * 100:.1f} [{p.lower * 100:.1f}, {p.upper * 100:.1f}], n = {p.n:,}; "
        f"target {ws.target * 100:.0f}; weights: {ws.weighting}; rank sets: {lg.rank_method}"
        + (f" (seed {lg.seed}, {lg.draws} draws)" if lg.seed is not None else "")
        + (
            ""
            if ws.weights is None
            else f"; weighting deff {ws.weights.deff_kish:.2f} (n_eff {ws.weights.n_effective:,.0f}), "
            f"max/min weight {ws.weights.ratio:.1f}"
        )
    )
    click.echo(
        "Read an interval as: the true index lies in it with 95% confidence; "
        "a rank interval [2-7] means the unit's true rank is somewhere from 2 to 7."
    )
    click.echo(f"{'rank':>4} {'interval':>9}  {'unit':40} {'index':>6} {'95% CI':>15} {'n':>6}  vs target  vs province")
    for r in rows:
        rank = f"{r['rank']:>4}" if r["rank"] else "   -"
        span = f"{r['rank_lower']}-{r['rank_upper']}" if r["rank"] else ""
        ci = f"[{r['lower']:.1f}, {r['upper']:.1f}]" if r["lower"] is not None else ""
        idx = f"{r['index']:.1f}" if r["index"] is not None else "-"
        tiers = f"{r['tier_target'] or '':9}  {r['tier_province'] or ''}" if r["rank"] else r["status"]
        line = f"{rank} {span:>9}  {r['name'][:40]:40} {idx:>6} {ci:>15} {r['n']:>6}  {tiers}"
        if change is not None and r["change_lower"] is not None:
            mark = " *" if r["change_significant"] else ""
            delta = r[f"change_since_{earlier_code}"]
            line += f"  change {delta:+.1f} [{r['change_lower']:+.1f}, {r['change_upper']:+.1f}]{mark}"
        click.echo(line)
    if shrunk is not None:
        click.echo(
            "model_based_eb (in --format csv/json): empirical Bayes estimate, model-based, not the official figure"
        )
    if change is not None:
        click.echo(f"change: since wave {earlier_code}, in points, with its 95% interval; * = significant")


@main.group()
def frame() -> None:
    """The sampling frame: monthly transaction counts per unit and procedure field."""


def _month_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    from survey.frames import parse_month

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
    from survey.frames import FrameImportError, import_frame, read_frame_file

    settings = _settings()
    try:
        rows = read_frame_file(file)
        engine = _engine(settings)
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


@main.command()
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
    import csv as csv_module
    from datetime import date

    from survey.errors import SipasError
    from survey.plans import plan_wave, save_plan

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

    settings = _settings()
    engine = _engine(settings)
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
        raise click.ClickException(getattr(exc, "message", None) or str(exc)) from None
    finally:
        engine.dispose()
    if fmt == "csv":
        writer = csv_module.writer(sys.stdout)
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


# Commands kept in their own modules register themselves on ``main`` when imported.
import survey.cli_integrity  # noqa: E402, F401
from survey import cli_fieldwork  # noqa: E402, F401
