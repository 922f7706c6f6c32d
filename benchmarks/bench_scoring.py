"""Speed of the scoring engine on a wave of 1,000,000 responses x 22 criteria, 1,000 units, 10 fields.

    .venv/bin/python -m benchmarks.bench_scoring [--responses 1000000] [--samplics-criteria 2]
        [--demo-db var/sipas.db]

Prints, best of 3 where cheap:
- the scorecard: every unit's 22 criterion, 5 element and overall indices with intervals;
- the league table of the 1,000 units with marginal and simultaneous bootstrap rank sets (1,000 draws);
- samplics' TaylorEstimator computing the same criterion estimates by unit (ratio, stratified), on
  as many criteria as asked (it is slow), with the largest difference from our numbers;
- end to end from the SQLite demo database (load the wave, scorecard, league table), if given.
Nothing is asserted; docs/benchmarks.md records the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np

from scoring.design import Design
from scoring.indices import IndexLayout, Scorecard, criterion_indicators, scorecard
from scoring.league import League, league

T = TypeVar("T")

CRITERIA = 22
ELEMENTS = ((0, 4), (4, 9), (9, 15), (15, 18), (18, 22))


def synthetic(n: int, units: int = 1000, fields: int = 10, seed: int = 1) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    unit = rng.integers(0, units, n)
    field = rng.integers(0, fields, n)
    truth = 0.75 + 0.23 * rng.beta(2.0, 1.5, units)
    prop = rng.beta(truth[unit] * 8, (1 - truth[unit]) * 8)
    satisfied = rng.random((n, CRITERIA)) < prop[:, None]
    levels = np.where(satisfied, 4 + (rng.random((n, CRITERIA)) < 0.45), 1 + rng.integers(0, 3, (n, CRITERIA)))
    levels = levels.astype(np.uint8)
    levels[rng.random((n, CRITERIA)) < 0.04] = 255
    weights = rng.uniform(0.5, 3.0, n)
    return unit, field, weights, levels


def best(fn: Callable[[], T], repeat: int = 3) -> tuple[float, T]:
    times: list[float] = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def compare_with_samplics(n: int, criteria: int, layout: IndexLayout) -> None:
    """samplics' TaylorEstimator and our engine on the same smaller wave (100 units x 10 fields)."""
    try:
        from samplics.estimation import TaylorEstimator
        from samplics.utils.types import PopParam
    except ImportError:
        print("samplics: not installed (make bench installs it) - skipped")
        return
    unit, field, weights, levels = synthetic(n, units=100, seed=2)
    strata = unit * 10 + field
    t_ours, sc = best(lambda: scorecard(Design.build(weights=weights, strata=strata), levels, layout, domain=unit))
    satisfied, valid = criterion_indicators(levels, layout)
    worst = 0.0
    t = time.perf_counter()
    for c in range(criteria):
        est = TaylorEstimator(param=PopParam.ratio)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the ratio Σw·satisfied / Σw·valid over every row: the same estimator as ours
            est.estimate(y=satisfied[:, c], x=valid[:, c], samp_weight=weights, stratum=strata.astype(str), domain=unit)
        pts = np.array([est.point_est[g] for g in range(100)])
        ses = np.array([est.stderror[g] for g in range(100)])
        worst = max(worst, float(np.abs(pts - sc.point[:, c]).max()), float(np.abs(ses - sc.se[:, c]).max()))
    per_criterion = (time.perf_counter() - t) / criteria
    print(
        f"samplics TaylorEstimator on {n:,} responses (100 units x 10 fields): {per_criterion:.2f} s per criterion, "
        f"{per_criterion * CRITERIA:.1f} s for 22; our whole scorecard (22 criteria, 5 elements, index): "
        f"{t_ours:.3f} s, {per_criterion * CRITERIA / t_ours:.0f}x faster; largest difference in points and "
        f"SEs over {criteria} criteria: {worst:.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--samplics-criteria", type=int, default=2)
    parser.add_argument(
        "--samplics-responses", type=int, default=50_000, help="samplics is compared on a wave of this size"
    )
    parser.add_argument("--demo-db", default=None, help="a SQLite file made by `sipas demo`")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, {datetime.now(UTC):%Y-%m-%d}"
    )
    unit, field, weights, levels = synthetic(args.responses)
    layout = IndexLayout(
        tuple(range(CRITERIA)),
        tuple(f"c{i}" for i in range(CRITERIA)),
        tuple((f"e{k}", tuple(range(a, b))) for k, (a, b) in enumerate(ELEMENTS)),
    )

    def card() -> Scorecard:
        design = Design.build(weights=weights, strata=unit * 10 + field)
        return scorecard(design, levels, layout, domain=unit, n_domains=1000)

    t_card, sc = best(card)
    j = sc.column("index")
    print(f"scorecard, {args.responses:,} x {CRITERIA} criteria, 1,000 units: {t_card:.3f} s (best of 3)")

    def table() -> League:
        return league(
            sc.point[:, j],
            sc.se[:, j],
            sc.n[:, j],
            sc.lower[:, j],
            sc.upper[:, j],
            min_responses=30,
            target=0.9,
            draws=1000,
        )

    t_league, _ = best(table, repeat=1)
    print(f"league table with marginal + simultaneous bootstrap rank sets (1,000 draws): {t_league:.3f} s")

    if args.samplics_criteria > 0:
        compare_with_samplics(args.samplics_responses, args.samplics_criteria, layout)

    if args.demo_db:
        from survey.db.engine import make_engine
        from survey.results.scores import WaveScores, _cache, wave_scores

        engine = make_engine(f"sqlite:///{args.demo_db}")

        def end_to_end() -> WaveScores:
            _cache.clear()
            return wave_scores(engine, wave_code="2026", level="commune")

        t_e2e, ws = best(end_to_end)
        t_cached, _ = best(lambda: wave_scores(engine, wave_code="2026", level="commune"))
        print(
            f"end to end from the SQLite demo database ({ws.responses:,} responses, 94 communes): "
            f"{t_e2e:.3f} s; from the cache: {t_cached * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
