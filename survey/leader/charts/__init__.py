"""Server-rendered SVG charts a leader reads: a funnel plot, a caterpillar plot and a unit's trend.

Each chart has a pure geometry module (`funnel`, `caterpillar`, `trend`; shared pieces in `geometry`) whose
``layout`` computes every position, tick, label and text as frozen dataclasses, and one writer (`svg`) that
turns a layout into SVG. The functions here put the two together.

No JavaScript: each chart is one ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that a screen
reader reads as a whole, a ``viewBox`` so it scales with the page, presentation attributes only (no
``style``, which the CSP forbids) and series told apart by shape and dash as well as colour, so it
prints in black and white. Each unit's mark carries its name in a ``<title>`` (a tooltip) and its
numbers in ``data-*`` attributes.

* `funnel_svg`: each ranked unit's index against its effective sample size, with 95% and 99.8% control
  limits around the province value (``scoring.funnel``, Spiegelhalter 2005).
* `caterpillar_svg`: the ranked units ordered by the index, each with its 95% interval, the target and
  the province as lines; units under the minimum number of responses shown apart or left out.
* `trend_svg`: one unit's index over waves with its 95% interval as a band, and the target.
"""

from __future__ import annotations

from scoring.funnel import Model
from survey.leader.charts import caterpillar, funnel, svg, trend
from survey.leader.charts.caterpillar import Unranked
from survey.leader.charts.funnel import SizeBasis, effective_sizes
from survey.leader.charts.trend import TrendPoint
from survey.results.scores import WaveScores

__all__ = ["SizeBasis", "TrendPoint", "Unranked", "caterpillar_svg", "effective_sizes", "funnel_svg", "trend_svg"]


def funnel_svg(
    ws: WaveScores,
    *,
    locale: str = "vi",
    level_name: str | None = None,
    measure_name: str | None = None,
    size_basis: SizeBasis = "design",
    overdispersion: Model | None = None,
    chart_id: str = "funnel",
    width: int = 880,
) -> str:
    """The funnel plot of `funnel.layout` (see its parameters) as SVG; ``chart_id`` prefixes the ids inside
    it, so give each chart on one page its own. Marks: circle inside the 95% limits; hollow triangle beyond
    95%; filled triangle beyond 99.8%; pointing up above, down below."""
    lay = funnel.layout(
        ws,
        locale=locale,
        level_name=level_name,
        measure_name=measure_name,
        size_basis=size_basis,
        overdispersion=overdispersion,
        width=width,
    )
    return svg.funnel(lay, chart_id)


def caterpillar_svg(
    ws: WaveScores,
    *,
    locale: str = "vi",
    level_name: str | None = None,
    measure_name: str | None = None,
    unranked: Unranked = "apart",
    label_limit: int = 120,
    chart_id: str = "caterpillar",
    width: int = 880,
) -> str:
    """The caterpillar plot of `caterpillar.layout` (see its parameters) as SVG; ``chart_id`` prefixes the
    ids inside it. Marks show the tier against the target: filled triangle up (interval above the target),
    hollow circle (includes it), filled triangle down (below it), grey square (not ranked, greyed and
    dashed). The target is a dashed line, the province value a solid one."""
    lay = caterpillar.layout(
        ws,
        locale=locale,
        level_name=level_name,
        measure_name=measure_name,
        unranked=unranked,
        label_limit=label_limit,
        width=width,
    )
    return svg.caterpillar(lay, chart_id)


def trend_svg(
    points: list[TrendPoint],
    *,
    target: float,
    title: str,
    locale: str = "vi",
    chart_id: str = "trend",
    width: int = 640,
) -> str:
    """The trend of one unit's index over ``points`` (oldest first) as SVG, with an interval band."""
    return svg.trend(trend.layout(points, target=target, title=title, locale=locale, width=width), chart_id)
