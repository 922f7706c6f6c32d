"""``sipas score``: a wave's league table as text, CSV or JSON."""

from __future__ import annotations

import sys
from typing import Any

import click

from survey.cli.common import load_settings, open_engine


@click.command()
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
    from survey.results.scores import TIER_NAMES, compare_waves, league_rows, wave_scores

    settings = load_settings()
    engine = open_engine(settings)
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
    rows: list[dict[str, Any]] = []
    for row in league_rows(ws):
        i = row.position
        rows.append(
            {
                "rank": row.rank,
                "rank_lower": row.rank_lower,
                "rank_upper": row.rank_upper,
                "rank_lower_simultaneous": row.rank_lower_table,
                "rank_upper_simultaneous": row.rank_upper_table,
                "code": row.unit.code,
                "name": row.unit.name_vi,
                "index": _points(row.index),
                "lower": _points(row.lower),
                "upper": _points(row.upper),
                "n": row.n,
                "df": row.df,
                "n_eff": round(row.n_eff, 1),
                "tier_target": None if row.tier_target is None else TIER_NAMES[row.tier_target],
                "tier_province": None if row.tier_province is None else TIER_NAMES[row.tier_province],
                "status": "ranked" if row.ranked else "insufficient data",
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
        from survey.csvsafe import csv_writer

        writer = csv_writer(sys.stdout)
        for key, value in header.items():
            writer.writerow([f"# {key}: {value}"])
        fields = list(rows[0]) if rows else ["rank"]
        writer.writerow(fields)
        writer.writerows([row.get(name) for name in fields] for row in rows)
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


def _points(share: float | None) -> float | None:
    """A share as points (0-100) with two decimals."""
    return None if share is None else round(share * 100, 2)
