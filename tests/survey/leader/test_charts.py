"""The leader's SVG charts: well-formed, accessible, one mark per ranked unit, at the engine's numbers,
with hostile unit names kept as text, and light enough for a thousand units."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from sqlalchemy import Engine

from scoring.funnel import funnel, funnel_limits
from scoring.league import league
from survey.demo.load import CURRENT_WAVE, DemoSummary
from survey.i18n import LOCALE_DIR
from survey.leader.charts import caterpillar_svg, funnel_svg
from survey.results.scores import UnitRow, WaveScores, wave_scores

Demo = tuple[Engine, DemoSummary, str]
NS = {"s": "http://www.w3.org/2000/svg"}
HOSTILE = "<script>alert('x')</script> & \"quoted\" \x07bell"


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - our own output, parsed to check it is well-formed
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def _invert(group: ET.Element, axis: str, pixel: float) -> float:
    d0, d1 = map(float, group.attrib[f"data-{axis}-domain"].split())
    r0, r1 = map(float, group.attrib[f"data-{axis}-range"].split())
    return d0 + (pixel - r0) / (r1 - r0) * (d1 - d0)


def _tolerance(group: ET.Element, axis: str) -> float:
    """Coordinates are written with one decimal: half a tenth of a pixel, in data units (and a bit)."""
    d0, d1 = map(float, group.attrib[f"data-{axis}-domain"].split())
    r0, r1 = map(float, group.attrib[f"data-{axis}-range"].split())
    return 0.06 * abs(d1 - d0) / abs(r1 - r0)


def _assert_accessible(root: ET.Element, svg: str) -> None:
    assert root.attrib["role"] == "img" and root.attrib["viewBox"].startswith("0 0 ")
    title, desc = root.find("s:title", NS), root.find("s:desc", NS)
    assert title is not None and title.text and desc is not None and desc.text
    assert set(root.attrib["aria-labelledby"].split()) == {title.attrib["id"], desc.attrib["id"]}
    # no script, no event handlers, no style (the CSP allows none of them)
    assert not root.findall(".//s:script", NS) and not root.findall(".//s:style", NS)
    assert not re.search(r"\s(on\w+|style)=", svg)


@pytest.fixture(scope="module")
def departments(demo_db: Demo) -> WaveScores:
    ws = wave_scores(demo_db[0], wave_code=CURRENT_WAVE, level="department")
    assert 0 < ws.league.ranked.sum() < len(ws.units)  # some ranked, some under the minimum
    return ws


def _design_sizes(ws: WaveScores, idx: np.ndarray) -> np.ndarray:
    j = ws.card.column(ws.measure)
    p, se = ws.card.point[idx, j], ws.card.se[idx, j]
    return p * (1 - p) / se**2


def test_funnel_marks_each_ranked_unit_at_the_engines_numbers(departments: WaveScores) -> None:
    ws = departments
    svg = funnel_svg(ws, locale="en")
    root = _parse(svg)
    _assert_accessible(root, svg)
    group = root.find(".//s:g[@class='units']", NS)
    assert group is not None
    marks = group.findall("s:use", NS)
    ranked = np.flatnonzero(ws.league.ranked)
    assert len(marks) == ranked.size
    by_code = {m.attrib["data-code"]: m for m in marks}
    sizes = _design_sizes(ws, ranked)
    j = ws.card.column(ws.measure)
    expected = funnel(ws.card.point[ranked, j], sizes, target=ws.province.point, levels=(0.95, 0.998), method="arcsine")
    for k, i in enumerate(ranked):
        unit, mark = ws.units[i], by_code[ws.units[i].code]
        point = ws.estimate(int(i)).point * 100
        assert float(mark.attrib["data-index"]) == pytest.approx(point, abs=5e-4)
        assert float(mark.attrib["data-n"]) == pytest.approx(sizes[k], abs=5e-3)
        assert int(mark.attrib["data-flag"]) == expected.flags[k]
        # where it is drawn is where the numbers say
        assert _invert(group, "x", float(mark.attrib["x"])) == pytest.approx(sizes[k], abs=_tolerance(group, "x"))
        assert _invert(group, "y", float(mark.attrib["y"])) == pytest.approx(point, abs=_tolerance(group, "y"))
        tip = mark.find("s:title", NS)
        assert tip is not None and tip.text and tip.text.startswith(f"{unit.name_en} ({unit.code})")
        shape = {0: "-in", 1: "-up", 2: "-up2", -1: "-dn", -2: "-dn2"}[int(expected.flags[k])]
        assert mark.attrib["href"].endswith(shape)


def test_funnel_limits_are_scoring_funnels(departments: WaveScores) -> None:
    ws = departments
    root = _parse(funnel_svg(ws, locale="en"))
    group = root.find(".//s:g[@class='units']", NS)
    assert group is not None
    paths = root.findall(".//s:g[@class='limits']/s:path", NS)
    assert sorted(p.attrib["data-level"] for p in paths) == ["0.95", "0.95", "0.998", "0.998"]
    for path in paths:
        points = [tuple(map(float, xy.split())) for xy in path.attrib["d"][1:].split("L")]
        n = np.array([_invert(group, "x", x) for x, _ in points])
        drawn = np.array([_invert(group, "y", y) for _, y in points])
        limits = funnel_limits(ws.province.point, n, levels=(0.95, 0.998), method="arcsine")
        lower, upper = limits.at(float(path.attrib["data-level"]))
        nearest = np.where(np.abs(drawn - lower * 100) < np.abs(drawn - upper * 100), lower, upper) * 100
        # n is read back from rounded pixels, so allow for the slope of the limit there
        assert np.abs(drawn - nearest).max() < 0.15


def test_caterpillar_rows_follow_the_league(departments: WaveScores) -> None:
    ws = departments
    svg = caterpillar_svg(ws, locale="en")
    root = _parse(svg)
    _assert_accessible(root, svg)
    scale = root.find(".//s:g[@class='scale']", NS)
    assert scale is not None
    tol = _tolerance(scale, "x")
    rows = root.findall(".//s:g[@class='ranked']/s:g[@class='unit']", NS)
    lg, j = ws.league, ws.card.column(ws.measure)
    assert len(rows) == int(lg.ranked.sum())
    position = {u.code: i for i, u in enumerate(ws.units)}
    ys = []
    for row in rows:
        i = position[row.attrib["data-code"]]
        assert lg.ranked[i]
        assert int(row.attrib["data-rank"]) == lg.rank[i]
        assert (int(row.attrib["data-rank-lower"]), int(row.attrib["data-rank-upper"])) == (
            lg.marginal_lower[i],
            lg.marginal_upper[i],
        )
        bar, mark = row.find("s:path", NS), row.find("s:use", NS)
        assert bar is not None and mark is not None
        x_lo, y, x_hi = map(float, re.fullmatch(r"M([\d.]+) ([\d.]+)H([\d.]+)", bar.attrib["d"]).groups())  # type: ignore[union-attr]
        assert _invert(scale, "x", x_lo) == pytest.approx(ws.card.lower[i, j] * 100, abs=tol)
        assert _invert(scale, "x", x_hi) == pytest.approx(ws.card.upper[i, j] * 100, abs=tol)
        assert _invert(scale, "x", float(mark.attrib["x"])) == pytest.approx(ws.card.point[i, j] * 100, abs=tol)
        assert float(row.attrib["data-index"]) == pytest.approx(ws.card.point[i, j] * 100, abs=5e-4)
        tier = int(lg.tier_target[i])
        assert mark.attrib["href"].endswith({1: "-up2", 0: "-in", -1: "-dn2"}[tier])
        ys.append((int(lg.rank[i]), y))
    assert [y for _, y in sorted(ys)] == sorted(y for _, y in ys)  # rank 1 at the top
    lines = {p.attrib["class"]: p for p in root.findall(".//s:g[@class='references']/s:path", NS)}
    for name, value in (("target", ws.target), ("province", ws.province.point)):
        x = float(lines[name].attrib["d"][1:].split()[0])
        assert _invert(scale, "x", x) == pytest.approx(value * 100, abs=tol)
    assert lines["target"].attrib.get("stroke-dasharray") and not lines["province"].attrib.get("stroke-dasharray")
    # units under the minimum: shown apart, without a rank
    apart = root.findall(".//s:g[@class='unranked']/s:g[@class='unit']", NS)
    unranked = [u.code for i, u in enumerate(ws.units) if not lg.ranked[i] and ws.card.n[i, j] > 0]
    assert sorted(g.attrib["data-code"] for g in apart) == sorted(unranked)
    assert all("data-rank" not in g.attrib for g in apart)
    omitted = _parse(caterpillar_svg(ws, locale="en", unranked="omit"))
    assert not omitted.findall(".//s:g[@class='unranked']", NS)
    assert len(omitted.findall(".//s:g[@class='unit']", NS)) == len(rows)
    notes = " ".join(t.text or "" for t in omitted.findall(".//s:g[@class='notes']/s:text", NS))
    assert f"Units with fewer than {ws.min_responses} responses, not shown: {len(unranked)}." in notes


def test_hostile_unit_names_stay_text(departments: WaveScores) -> None:
    units = tuple(replace(u, name_vi=HOSTILE, name_en=HOSTILE, code=f"{u.code}&<'\"") for u in departments.units)
    ws = replace(departments, units=units)
    for svg in (
        funnel_svg(ws, locale="vi"),
        caterpillar_svg(ws, locale="en"),
        caterpillar_svg(ws, locale="vi", label_limit=0),
    ):
        root = _parse(svg)  # well-formed despite <, &, quotes and a control character
        assert "<script" not in svg and "\x07" not in svg
        assert not root.findall(".//s:script", NS)
        tips = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
        assert any("<script>alert('x')</script> & \"quoted\" \ufffdbell" in t for t in tips)
        codes = {e.attrib["data-code"] for e in root.iter() if "data-code" in e.attrib}
        assert codes and all(c.endswith("&<'\"") for c in codes)


def test_labels_follow_the_locale(departments: WaveScores) -> None:
    vi = funnel_svg(departments, locale="vi")
    en = funnel_svg(departments, locale="en")
    assert "Biểu đồ phễu: Chỉ số hài lòng chung, Sở, ban, ngành" in vi and "Cỡ mẫu hiệu dụng" in vi
    assert "Funnel plot: Overall index, Departments" in en and "Effective sample size" in en
    cat_vi = caterpillar_svg(departments, locale="vi")
    assert "Bảng xếp hạng" in cat_vi and "Khoảng tin cậy chứa mục tiêu" in cat_vi and "Mục tiêu 90,0" in cat_vi
    named = caterpillar_svg(departments, locale="en", level_name="Sở & ngành", measure_name="Access")
    assert "League table: Access, Sở &amp; ngành" in named
    # two charts on one page do not share ids
    assert 'id="funnel-title"' in vi and 'id="a-title"' in funnel_svg(departments, chart_id="a")


def test_a_level_without_ranked_units_still_draws(demo_db: Demo) -> None:
    ws = wave_scores(demo_db[0], wave_code=CURRENT_WAVE, level="commune", min_responses=10**6)
    for svg in (funnel_svg(ws, locale="en"), caterpillar_svg(ws, locale="en")):
        root = _parse(svg)
        assert not root.findall(".//s:g[@class='ranked']", NS)
        assert not root.findall(".//s:g[@class='units']/s:use", NS)


def synthetic_scores(template: WaveScores, units: int, seed: int = 7) -> WaveScores:
    """A level of ``units`` units with made-up estimates (the overall index only), ranked by joint intervals."""
    rng = np.random.default_rng(seed)
    n = rng.integers(5, 400, size=units)
    p = np.clip(rng.normal(0.9, 0.04, size=units), 0.5, 0.995)
    se = np.sqrt(p * (1 - p) / n) * 0.5
    lower, upper = np.clip(p - 1.96 * se, 0, 1), np.clip(p + 1.96 * se, 0, 1)

    def c(a: np.ndarray) -> np.ndarray:
        return np.asarray(a)[:, None]

    card = replace(
        template.card,
        measures=("index",),
        kinds=("index",),
        point=c(p),
        se=c(se),
        lower=c(lower),
        upper=c(upper),
        n=c(n),
        n_eff=c(n.astype(float)),
        deff=c(np.ones(units)),
        df=n - 1,
        n_any=n,
        reliability=c(np.zeros(units, dtype=np.int8)),
        vs_total_se=c(se),
    )
    one = np.ones((1, 1))
    total = replace(
        template.total,
        measures=("index",),
        kinds=("index",),
        point=0.9 * one,
        se=0.001 * one,
        lower=0.898 * one,
        upper=0.902 * one,
        n=n.sum() * one.astype(int),
        n_eff=n.sum() * one,
        deff=one,
        df=np.array([n.sum() - 1]),
        n_any=np.array([n.sum()]),
        reliability=np.zeros((1, 1), dtype=np.int8),
    )
    ranks = league(
        p,
        se,
        n,
        lower,
        upper,
        min_responses=30,
        target=0.9,
        total_point=0.9,
        vs_total_se=se,
        df=n - 1,
        rank_method="joint",
    )
    rows = tuple(
        UnitRow(i, f"U{i:04d}", f"Xã Thử Nghiệm Số {i}", f"Test commune {i}", "commune", f"/1/{i}/")
        for i in range(units)
    )
    return replace(template, units=rows, card=card, total=total, league=ranks, measure="index", level="commune")


def test_a_thousand_units_stay_light(departments: WaveScores) -> None:
    ws = synthetic_scores(departments, 1000)
    ranked = int(ws.league.ranked.sum())
    cat = caterpillar_svg(ws, locale="vi")
    fun = funnel_svg(ws, locale="vi")
    assert len(_parse(cat).findall(".//s:g[@class='ranked']/s:g[@class='unit']", NS)) == ranked
    assert len(_parse(fun).findall(".//s:g[@class='units']/s:use", NS)) == ranked
    assert not _parse(cat).findall(".//s:g[@class='labels']", NS)  # too many rows to name: tooltips only
    # about 0.4 kB a unit for the caterpillar (name, numbers, bar, mark), 0.25 kB for the funnel
    assert len(cat.encode()) < 450_000 and len(fun.encode()) < 300_000


def test_leader_catalogue_translates_every_label() -> None:
    """Every message of the charts and exports is in leader.po, in Vietnamese, with the same placeholders."""
    root = Path(__file__).resolve().parents[3]
    sources = [root / "survey" / "results" / "exports.py", *sorted((root / "survey" / "leader").rglob("*.py"))]
    messages = {
        str(message)
        for path in sources
        for _line, message, _comments, _context in extract_from_file("python", path, keywords={"_": None, "N_": None})
        if message
    }
    assert len(messages) > 100
    placeholder = re.compile(r"\{(\w+)\}")
    for locale in ("vi", "en"):
        with (LOCALE_DIR / locale / "LC_MESSAGES" / "leader.po").open("rb") as fh:
            catalog = read_po(fh)
        assert messages <= {str(m.id) for m in catalog if m.id}, locale
        if locale == "vi":
            for message in messages:
                translated = catalog.get(message).string  # type: ignore[union-attr]
                assert translated, message
                assert set(placeholder.findall(message)) == set(placeholder.findall(str(translated))), message
