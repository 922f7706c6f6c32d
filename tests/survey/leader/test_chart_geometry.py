"""The charts' geometry without SVG: golden layouts of small levels worked out by hand, and properties of
scales, ticks and layouts (points inside the plot, ticks increasing, tick labels showing their values)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.indices import Scorecard
from scoring.league import League
from survey.leader.charts import caterpillar, funnel, trend
from survey.leader.charts.funnel import effective_sizes
from survey.leader.charts.geometry import (
    Rect,
    nice_ticks,
    percent_domain,
    tick_decimals,
    tick_labels,
    truncate,
)
from survey.leader.charts.trend import TrendPoint
from survey.results.scores import UnitRow, WaveScores

Z95, Z998 = 1.959963984540054, 3.090232306167813  # standard normal quantiles at 0.975 and 0.999


def scores(
    units: list[dict[str, Any]],
    *,
    province: float,
    target: float = 0.9,
    min_responses: int = 30,
) -> WaveScores:
    """A level of units from plain numbers (the overall index only): keys p, lo, hi, n, and for ranked units
    rank, rlo, rhi (the rank interval) and tier (against the target); se defaults to a binomial one."""
    g = len(units)

    def col(key: str, default: float = 0.0) -> np.ndarray:
        return np.array([[u.get(key, default)] for u in units], dtype=np.float64)

    p, n = col("p"), col("n")
    se = np.array([[u.get("se", math.sqrt(u["p"] * (1 - u["p"]) / max(u["n"], 1)))] for u in units])
    card = Scorecard(
        measures=("index",),
        kinds=("index",),
        point=p,
        se=se,
        lower=col("lo"),
        upper=col("hi"),
        n=n.astype(np.int64),
        n_eff=n,
        deff=np.ones((g, 1)),
        df=n[:, 0].astype(np.int64) - 1,
        n_any=n[:, 0].astype(np.int64),
        reliability=np.zeros((g, 1), dtype=np.int8),
        aggregation="mean_of_elements",
        method="wilson",
        composite_method="logit",
        level=0.95,
    )
    one = np.ones((1, 1))
    total = Scorecard(
        measures=("index",),
        kinds=("index",),
        point=province * one,
        se=0.001 * one,
        lower=(province - 0.002) * one,
        upper=(province + 0.002) * one,
        n=(n.sum() * one).astype(np.int64),
        n_eff=n.sum() * one,
        deff=one,
        df=np.array([int(n.sum()) - 1]),
        n_any=np.array([int(n.sum())]),
        reliability=np.zeros((1, 1), dtype=np.int8),
        aggregation="mean_of_elements",
        method="wilson",
        composite_method="logit",
        level=0.95,
    )
    rank = np.array([int(u.get("rank", 0)) for u in units])
    league = League(
        ranked=rank > 0,
        rank=rank,
        marginal_lower=np.array([int(u.get("rlo", 0)) for u in units]),
        marginal_upper=np.array([int(u.get("rhi", 0)) for u in units]),
        simultaneous_lower=np.array([int(u.get("rlo", 0)) for u in units]),
        simultaneous_upper=np.array([int(u.get("rhi", 0)) for u in units]),
        tier_target=np.array([int(u.get("tier", 0)) for u in units], dtype=np.int8),
        tier_total=np.zeros(g, dtype=np.int8),
        rank_method="joint",
        seed=None,
        draws=None,
        level=0.95,
    )
    rows = tuple(
        UnitRow(k, str(u.get("code", f"U{k}")), f"Đơn vị {k}", f"Unit {k}", "commune", f"/{k}/")
        for k, u in enumerate(units)
    )
    return WaveScores(
        wave_code="2026",
        level="commune",
        scope="own",
        units=rows,
        card=card,
        total=total,
        league=league,
        measure="index",
        target=target,
        min_responses=min_responses,
        responses=int(n.sum()),
        excluded_flagged=0,
    )


def _inside(rect: Rect, x: float, y: float) -> bool:
    return rect.x - 1e-9 <= x <= rect.right + 1e-9 and rect.y - 1e-9 <= y <= rect.bottom + 1e-9


def _flat(points: object) -> list[float]:
    """Nested pairs as one list of numbers, for pytest.approx."""
    if isinstance(points, tuple | list):
        return [v for p in points for v in _flat(p)]
    assert isinstance(points, int | float)
    return [float(points)]


def _read(label: str) -> float:
    """An English label back to its number ("1,000.5" -> 1000.5)."""
    return float(label.replace(",", ""))


# --- golden layouts ----------------------------------------------------------------------------------------


def test_funnel_of_three_units_by_hand() -> None:
    # three units around a province of 50%, sizes as given ("respondents"); width 1148 leaves a plot of
    # 1060 px for x from 0 to 1.06 x 1000 = 1060: one pixel per response, from x = 64.
    ws = scores(
        [
            {"code": "A", "p": 0.40, "n": 1000, "rank": 3, "rlo": 3, "rhi": 3},  # far below: beyond 99.8%
            {"code": "B", "p": 0.50, "n": 250, "rank": 2, "rlo": 1, "rhi": 3},  # at the province
            {"code": "C", "p": 0.55, "n": 500, "rank": 1, "rlo": 1, "rhi": 2},  # above 95%, inside 99.8%
        ],
        province=0.5,
    )
    lay = funnel.layout(ws, locale="en", size_basis="respondents", width=1148)
    assert lay.plot == Rect(64, 64, 1060, 340)
    assert (lay.x_scale.d0, lay.x_scale.d1) == (0.0, pytest.approx(1060.0))
    # y: the points (40..55) and the limits seen from n = 200 (99.8%: 39.2..60.8) -> 35..65 on multiples of 5
    assert (lay.y_scale.d0, lay.y_scale.d1) == (35.0, 65.0)

    def y(v: float) -> float:
        return 404 - (v - 35) / 30 * 340

    # flagged units last: B inside (0), C above 95% (+1), A below 99.8% (-2)
    assert [(u.code, u.flag) for u in lay.units] == [("B", 0), ("C", 1), ("A", -2)]
    expected = {"B": (314.0, y(50)), "C": (564.0, y(55)), "A": (1064.0, y(40))}
    for u in lay.units:
        assert u.at == pytest.approx(expected[u.code])
    assert lay.units[2].at == pytest.approx((1064.0, 347.3333333))
    assert [u.index for u in lay.units] == pytest.approx([50.0, 55.0, 40.0])
    assert [u.size for u in lay.units] == [250.0, 500.0, 1000.0]
    assert lay.units[0].tip == "Unit 1 (B): 50.0; n = 250; n* = 250; within the 95% limits"

    assert [t.value for t in lay.x_ticks] == [0, 200, 400, 600, 800, 1000]
    assert [t.label.text for t in lay.x_ticks] == ["0", "200", "400", "600", "800", "1,000"]
    labels = [(t.label.x, t.label.y, t.label.anchor) for t in lay.x_ticks[:2]]
    assert labels == [(64, 420, "middle"), (264, 420, "middle")]
    assert lay.x_ticks[1].grid == ((264, 64), (264, 404))
    assert [t.value for t in lay.y_ticks] == [35, 40, 45, 50, 55, 60, 65]
    assert [t.label.text for t in lay.y_ticks] == ["35", "40", "45", "50", "55", "60", "65"]
    assert [t.grid[0][1] for t in lay.y_ticks] == pytest.approx([404, 347.3333, 290.6667, 234, 177.3333, 120.6667, 64])
    assert (lay.y_ticks[0].label.x, lay.y_ticks[0].label.anchor) == (58, "end")

    assert lay.province == ((64, 234), (1124, 234))
    assert (lay.province_label.text, lay.province_label.x, lay.province_label.y) == ("Province 50.0", 1120, 229)
    assert lay.frame == ((64, 64), (64, 404), (1124, 404))
    assert (lay.x_title.text, lay.x_title.x, lay.x_title.y) == ("Number of responses (n)", 594, 440)
    assert (lay.y_title.text, lay.y_title.angle) == ("Index (%)", -90.0)

    # the limits: both sides at both levels, every point on sin²(asin √0.5 ± z / (2√n)) (Spiegelhalter 2005)
    assert [(c.level, c.side) for c in lay.limits] == [
        (0.95, "lower"),
        (0.95, "upper"),
        (0.998, "lower"),
        (0.998, "upper"),
    ]
    for curve in lay.limits:
        z = (Z95 if curve.level == 0.95 else Z998) * (-1 if curve.side == "lower" else 1)
        assert len(curve.points) == 90
        xs = np.array([x for x, _ in curve.points])
        n = xs - 64
        assert n[0] == pytest.approx(250 / 3) and n[-1] == pytest.approx(1060)
        angle = np.clip(math.pi / 4 + z / (2 * np.sqrt(n)), 0, math.pi / 2)
        assert np.array([yy for _, yy in curve.points]) == pytest.approx(y(100 * np.sin(angle) ** 2))

    assert [e.key for e in lay.legend] == ["in", "up", "up2", "dn", "dn2", "province", "limit-0.95", "limit-0.998"]
    assert lay.header.title.text == "Funnel plot: Overall index, Communes"
    assert "Units above the limits: 1 (beyond 99.8%: 0). Units below the limits: 1 (beyond 99.8%: 1)." in lay.desc


def test_effective_sizes_by_hand() -> None:
    # n* = p(1 - p)/SE²: 0.25 / 0.02² = 625; 0.16 / 0.01² = 1600; n where SE = 0 or p is 0 or 1
    p, se = np.array([0.5, 0.8, 0.5, 1.0, 0.0]), np.array([0.02, 0.01, 0.0, 0.01, 0.01])
    sizes = effective_sizes(p, se, np.full(5, 40))
    assert sizes == pytest.approx([625, 1600, 40, 40, 40])


def _four_units() -> WaveScores:
    # listed out of order; D has too few responses and is shown apart
    return scores(
        [
            {"code": "C", "p": 0.80, "lo": 0.76, "hi": 0.84, "n": 90, "rank": 3, "rlo": 2, "rhi": 3, "tier": -1},
            {"code": "D", "p": 0.86, "lo": 0.74, "hi": 0.93, "n": 12},
            {"code": "A", "p": 0.95, "lo": 0.92, "hi": 0.97, "n": 200, "rank": 1, "rlo": 1, "rhi": 1, "tier": 1},
            {"code": "B", "p": 0.88, "lo": 0.84, "hi": 0.91, "n": 150, "rank": 2, "rlo": 2, "rhi": 3, "tier": 0},
        ],
        province=0.85,
    )


def test_caterpillar_of_three_ranked_units_and_one_apart_by_hand() -> None:
    # width 966: rows named, the index from x0 = 16 + 250 = 266 to x1 = 966 - 20 - 80 = 866; the values
    # (74..97) give a domain of 70..100, so 20 px a point
    lay = caterpillar.layout(_four_units(), locale="en", width=966)
    assert (lay.scale.d0, lay.scale.d1, lay.scale.r0, lay.scale.r1) == (70, 100, 266, 866)

    def x(v: float) -> float:
        return 266 + (v - 70) * 20

    # the legend takes two rows (the sixth item does not fit: 909.2 + 257 > 946): 52 + 40 + 10 + 26 = 128
    assert [e.label.y for e in lay.legend] == [66, 66, 66, 66, 66, 86]
    assert [e.key for e in lay.legend] == ["up2", "in", "dn2", "target", "province", "sq"]
    assert [r.code for r in lay.ranked] == ["A", "B", "C"]
    assert [r.y for r in lay.ranked] == [137, 155, 173]  # 18 px rows from 128
    assert [r.code for r in lay.apart] == ["D"]
    assert lay.apart[0].y == 128 + 3 * 18 + 30 + 9
    for row, (point, lower, upper) in zip(
        (*lay.ranked, *lay.apart), ((95, 92, 97), (88, 84, 91), (80, 76, 84), (86, 74, 93)), strict=True
    ):
        assert row.x == pytest.approx(x(point))
        assert row.bar == pytest.approx((x(lower), x(upper)))
        assert (row.index, row.lower, row.upper) == pytest.approx((point, lower, upper))
    assert [r.tier for r in lay.ranked] == [1, 0, -1]
    assert [r.rank for r in lay.ranked] == [(1, 1, 1), (2, 2, 3), (3, 2, 3)]
    assert lay.apart[0].rank is None and not lay.apart[0].ranked
    rank_labels = [r.rank_label.text for r in (*lay.ranked, *lay.apart) if r.rank_label]
    assert rank_labels == ["1 (1–1)", "2 (2–3)", "3 (2–3)", "-"]
    assert lay.ranked[0].name is not None
    assert (lay.ranked[0].name.x, lay.ranked[0].name.y, lay.ranked[0].name.text) == (16, 141, "Unit 2")
    assert lay.ranked[0].tip == "Unit 2 (A): 95.0 [92.0–97.0]; n = 200; rank 1 (1–1); above the target; " + (
        "indistinguishable from the province"
    )

    assert [t.value for t in lay.ticks] == [70, 75, 80, 85, 90, 95, 100]
    assert [t.label.text for t in lay.ticks] == ["70", "75", "80", "85", "90", "95", "100"]
    assert [t.grid for t in lay.ticks[:2]] == [((266, 128), (266, 230)), ((366, 128), (366, 230))]
    assert [(t.x, t.y, t.text) for t in lay.top_labels[:2]] == [(266, 122, "70"), (366, 122, "75")]
    assert (lay.ticks[0].label.x, lay.ticks[0].label.y) == (266, 246)  # under the rows
    assert lay.target.line == ((666, 128), (666, 230)) and lay.target.value == pytest.approx(90)
    assert lay.province.line == ((566, 128), (566, 230)) and lay.province.value == pytest.approx(85)
    assert lay.apart_rule == ((16, 186), (946, 186))
    assert lay.apart_title is not None and lay.apart_title.text == "Not ranked: fewer than 30 responses"
    assert lay.height == 230 + 24 + 15 * len(lay.notes) + 12
    assert lay.desc.startswith("League table of Overall index for Communes, wave 2026: 3 ranked units")
    assert "Intervals above the target: 1; including it: 1; below it: 1." in lay.desc


def test_caterpillar_leaves_out_or_thins_rows() -> None:
    omitted = caterpillar.layout(_four_units(), locale="en", unranked="omit", width=966)
    assert not omitted.apart and omitted.apart_rule is None
    assert "Units with fewer than 30 responses, not shown: 1." in [t.text for t in omitted.notes]
    thin = caterpillar.layout(_four_units(), locale="en", label_limit=3)
    # four rows share 1400 px, at most 8 px each; no names, and larger marks for the legend
    assert [r.y for r in thin.ranked][1] - thin.ranked[0].y == 8
    assert all(r.name is None and r.rank_label is None for r in (*thin.ranked, *thin.apart))
    assert thin.column_heads == () and thin.legend_marks is not None and thin.legend_marks.radius == 4
    assert thin.marks.radius == 3.0 and thin.bar_width == 2.0
    assert (thin.scale.r0, thin.scale.r1) == (16, 860)


def test_tick_labels_show_the_tick_values() -> None:
    """A 2.5 step on 80..100 was labelled 80, 82, 85, 88 (77.5 and 82.5 rounded to even); labels now show
    every tick exactly, with the same number of decimals, in the reader's locale."""
    ws = scores(
        [
            {"code": "A", "p": 0.95, "lo": 0.90, "hi": 0.98, "n": 200, "rank": 1, "rlo": 1, "rhi": 1, "tier": 0},
            {"code": "B", "p": 0.85, "lo": 0.82, "hi": 0.88, "n": 150, "rank": 2, "rlo": 2, "rhi": 2, "tier": -1},
        ],
        province=0.9,
    )
    en = caterpillar.layout(ws, locale="en")
    assert [t.value for t in en.ticks] == [80, 82.5, 85, 87.5, 90, 92.5, 95, 97.5, 100]
    assert [t.label.text for t in en.ticks] == ["80.0", "82.5", "85.0", "87.5", "90.0", "92.5", "95.0", "97.5", "100.0"]
    assert [t.text for t in en.top_labels] == [t.label.text for t in en.ticks]
    vi = caterpillar.layout(ws, locale="vi")
    assert [t.label.text for t in vi.ticks][:2] == ["80,0", "82,5"]
    assert tick_labels([0, 250, 500, 750, 1000, 1250], "en") == ["0", "250", "500", "750", "1,000", "1,250"]
    assert tick_labels([0, 0.25, 0.5], "en") == ["0.00", "0.25", "0.50"]
    assert tick_labels([77.5, 80], "vi") == ["77,5", "80,0"]


def test_trend_of_three_waves_by_hand() -> None:
    # width 640: the plot runs from x = 56 to 616 and y = 220 (bottom) to 56; three waves 280 px apart.
    # Intervals 76..91 and the target 90 give a domain of 75..95, so 8.2 px a point
    points = [
        TrendPoint("2024", "2024", 0.80, 0.76, 0.84, 100),
        TrendPoint("2025", "2025", math.nan, math.nan, math.nan, 0),
        TrendPoint("2026", "2026", 0.88, 0.85, 0.91, 120),
    ]
    lay = trend.layout(points, target=0.9, title="Commune 1", locale="en")
    assert lay.plot == Rect(56, 56, 560, 164)
    assert (lay.scale.d0, lay.scale.d1) == (75, 95)
    assert [w.label.x for w in lay.waves] == [56, 336, 616]
    assert [w.label.y for w in lay.waves] == [238, 238, 238]
    assert lay.waves[0].at == pytest.approx((56, 179))
    assert _flat(lay.waves[0].whisker) == pytest.approx([56, 211.8, 56, 146.2])
    assert lay.waves[1].at is None and lay.waves[1].whisker is None
    assert lay.waves[2].at == pytest.approx((616, 113.4))
    assert _flat(lay.waves[2].whisker) == pytest.approx([616, 138, 616, 88.8])
    # the band: upper ends left to right, then lower ends back; the line skips the wave without data
    assert _flat(lay.band) == pytest.approx([56, 146.2, 616, 88.8, 616, 138, 56, 211.8])
    assert _flat(lay.line) == pytest.approx([56, 179, 616, 113.4])
    assert _flat(lay.target) == pytest.approx([56, 97, 616, 97])
    assert (lay.target_label.text, lay.target_label.x, lay.target_label.y) == ("target 90.0", 616, pytest.approx(91))
    assert [t.value for t in lay.y_ticks] == [75, 80, 85, 90, 95]
    assert [t.label.text for t in lay.y_ticks] == ["75", "80", "85", "90", "95"]
    assert lay.desc == (
        "2024: 80.0 (95% interval 76.0 to 84.0), n = 100; 2026: 88.0 (95% interval 85.0 to 91.0), n = 120"
    )


def test_trend_of_one_wave_or_none() -> None:
    one = trend.layout([TrendPoint("2026", "2026", 0.9, 0.85, 0.94, 80)], target=0.9, title="t", locale="en")
    assert one.waves[0].at == pytest.approx((336, one.scale(90)))  # alone in the middle
    assert one.band == () and one.line == ()
    none = trend.layout([], target=0.9, title="t", locale="en")
    assert none.waves == () and none.desc == "No data in any wave."


def test_truncate_keeps_short_names() -> None:
    assert truncate("Xã A", 100, 12) == "Xã A"
    cut = truncate("Ủy ban nhân dân xã Thạnh Phú Đông huyện Giồng Trôm", 120, 12)  # 120 / 6.6: room for 18
    assert cut == "Ủy ban nhân dân x…" and len(cut) == 18


# --- properties --------------------------------------------------------------------------------------------

# axes of percentages and sample sizes: spans from a hundredth to 100,000, starting anywhere in ±10,000
bounds = st.tuples(st.floats(-1e4, 1e4), st.floats(1e-2, 1e5)).map(lambda t: (t[0], t[0] + t[1]))


@settings(max_examples=300, deadline=None)
@given(bounds=bounds, most=st.integers(2, 12))
def test_ticks_increase_inside_the_range_and_read_as_their_values(bounds: tuple[float, float], most: int) -> None:
    lo, hi = bounds
    ticks = nice_ticks(lo, hi, most)
    assert 1 <= len(ticks) <= most + 1  # a narrow range between two round values may hold a single tick
    slack = 1e-8 * (hi - lo)  # nice_ticks forgives a billionth of a step (at most 5 ranges) of rounding
    assert lo - slack <= ticks[0] and ticks[-1] <= hi + slack
    if len(ticks) > 1:
        steps = np.diff(ticks)
        assert (steps > 0).all() and steps == pytest.approx(np.full(steps.size, steps[0]))
        step = steps[0] / 10 ** math.floor(math.log10(steps[0]))
        assert min(abs(step - m) for m in (1, 2, 2.5, 5, 10)) < 1e-6
        assert (hi - lo) / steps[0] <= most + 1e-9
    labels = tick_labels(ticks, "en")
    decimals = tick_decimals(ticks)
    for value, label in zip(ticks, labels, strict=True):
        assert _read(label) == pytest.approx(value, abs=1e-9 + 1e-12 * abs(value))  # never 77.5 as "78"
        assert len(label.partition(".")[2]) == decimals


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=20))
def test_percent_domain_holds_the_values(values: list[float]) -> None:
    lo, hi = percent_domain(values)
    assert 0 <= lo < hi <= 100 and hi - lo >= 10 and lo % 5 == 0 and hi % 5 == 0
    assert lo <= min(values) and max(values) <= hi


unit = st.fixed_dictionaries(
    {"p": st.floats(0.3, 0.99), "width": st.floats(0.0, 0.2), "n": st.integers(30, 3000), "se": st.floats(0.002, 0.05)}
)


def _level(draws: list[dict[str, float]], province: float, ranked_share: float) -> WaveScores:
    units: list[dict[str, Any]] = []
    ranked = max(1, int(len(draws) * ranked_share))
    order = sorted(range(len(draws)), key=lambda k: -draws[k]["p"])
    for k, d in enumerate(draws):
        u: dict[str, Any] = {
            "code": f"U{k:02d}",
            "p": d["p"],
            "lo": max(0.0, d["p"] - d["width"]),
            "hi": min(1.0, d["p"] + d["width"] / 2),
            "n": d["n"],
            "se": d["se"],
        }
        if order.index(k) < ranked:
            r = order.index(k) + 1
            u |= {"rank": r, "rlo": max(1, r - 2), "rhi": min(ranked, r + 2), "tier": (k % 3) - 1}
        units.append(u)
    return scores(units, province=province)


@settings(max_examples=60, deadline=None)
@given(
    draws=st.lists(unit, min_size=1, max_size=12),
    province=st.floats(0.5, 0.98),
    basis=st.sampled_from(["design", "respondents"]),
)
def test_funnel_points_and_ticks_stay_in_the_plot(draws: list[dict[str, float]], province: float, basis: str) -> None:
    ws = _level(draws, province, 1.0)
    lay = funnel.layout(ws, locale="en", size_basis="design" if basis == "design" else "respondents")
    assert len(lay.units) == len(draws)
    for u in lay.units:
        assert _inside(lay.plot, *u.at)
        assert lay.y_scale.d0 <= u.index <= lay.y_scale.d1
    assert [abs(u.flag) for u in lay.units] == sorted(abs(u.flag) for u in lay.units)  # flagged on top
    for ticks, horizontal in ((lay.x_ticks, True), (lay.y_ticks, False)):
        values = [t.value for t in ticks]
        assert values == sorted(values) and len(set(values)) == len(values)
        for t in ticks:
            assert _inside(lay.plot, *t.grid[0]) and _inside(lay.plot, *t.grid[1])
            assert _read(t.label.text) == pytest.approx(t.value)
            assert (t.label.x if horizontal else t.label.y - 4) == pytest.approx(t.grid[0][0 if horizontal else 1])
    assert _inside(lay.plot, *lay.province[0]) and _inside(lay.plot, *lay.province[1])
    assert lay.height > lay.plot.bottom + 56


@settings(max_examples=60, deadline=None)
@given(
    draws=st.lists(unit, min_size=1, max_size=30),
    province=st.floats(0.5, 0.98),
    ranked_share=st.floats(0.0, 1.0),
    label_limit=st.sampled_from([0, 10, 120]),
)
def test_caterpillar_rows_stay_in_the_plot_in_rank_order(
    draws: list[dict[str, float]], province: float, ranked_share: float, label_limit: int
) -> None:
    ws = _level(draws, province, ranked_share)
    lay = caterpillar.layout(ws, locale="en", label_limit=label_limit)
    x0, x1 = lay.scale.r0, lay.scale.r1
    top, bottom = lay.ticks[0].grid[0][1], lay.ticks[0].grid[1][1]
    rows = (*lay.ranked, *lay.apart)
    assert len(rows) == len(draws)
    for row in rows:
        assert x0 <= row.x <= x1 and top < row.y < bottom
        assert row.bar is not None and x0 <= row.bar[0] <= row.x <= row.bar[1] <= x1
    ys = [r.y for r in rows]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)  # rank 1 at the top, the units apart below
    assert [r.rank[0] for r in lay.ranked if r.rank] == sorted(r.rank[0] for r in lay.ranked if r.rank)
    values = [t.value for t in lay.ticks]
    assert values == sorted(values) and lay.scale.d0 <= values[0] and values[-1] <= lay.scale.d1
    assert all(x0 <= t.label.x <= x1 and _read(t.label.text) == pytest.approx(t.value) for t in lay.ticks)
    assert all(x0 <= ref.line[0][0] <= x1 for ref in (lay.target, lay.province))


@settings(max_examples=60, deadline=None)
@given(
    waves=st.lists(
        st.one_of(
            st.none(),
            st.tuples(st.floats(0.02, 0.98), st.floats(0.0, 0.02), st.floats(0.0, 0.02), st.integers(1, 500)),
        ),
        max_size=8,
    ),
    target=st.floats(0.5, 0.99),
)
def test_trend_points_stay_in_the_plot(waves: list[tuple[float, float, float, int] | None], target: float) -> None:
    points = [
        TrendPoint(f"w{k}", f"W{k}", math.nan, math.nan, math.nan, 0)
        if w is None
        else TrendPoint(f"w{k}", f"W{k}", w[0], w[0] - w[1], w[0] + w[2], w[3])
        for k, w in enumerate(waves)
    ]
    lay = trend.layout(points, target=target, title="t", locale="en")
    xs = [w.label.x for w in lay.waves]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    for w, w_in in zip(lay.waves, waves, strict=True):
        assert (w.at is None) == (w_in is None)
        if w.at is not None and w.whisker is not None:
            assert _inside(lay.plot, *w.at) and all(_inside(lay.plot, *end) for end in w.whisker)
            assert w.whisker[1][1] <= w.at[1] <= w.whisker[0][1]  # upper end above the point, lower below
    assert all(_inside(lay.plot, *p) for p in (*lay.band, *lay.line, *lay.target))
    assert len(lay.band) == (2 * len(lay.line))
    assert all(_read(t.label.text) == pytest.approx(t.value) for t in lay.y_ticks)
    assert all(lay.plot.y <= t.grid[0][1] <= lay.plot.bottom for t in lay.y_ticks)
