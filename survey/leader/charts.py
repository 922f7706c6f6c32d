"""Server-rendered SVG charts of a league table: a funnel plot and a caterpillar plot.

No JavaScript: each chart is one ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that a screen
reader reads as a whole, a ``viewBox`` so it scales with the page, presentation attributes only (no
``style``, which the CSP forbids) and series told apart by shape and dash as well as colour, so it
prints in black and white. Each unit's mark carries its name in a ``<title>`` (a tooltip) and its
numbers in ``data-*`` attributes. Every text is escaped here, with characters XML cannot hold replaced.

* `funnel_svg`: each ranked unit's index against its effective sample size, with 95% and 99.8% control
  limits around the province value (``scoring.funnel``, Spiegelhalter 2005).
* `caterpillar_svg`: the ranked units ordered by the index, each with its 95% interval, the target and
  the province as lines; units under the minimum number of responses shown apart or left out.
"""

from __future__ import annotations

from survey.leader.caterpillar_chart import Unranked, caterpillar_svg
from survey.leader.funnel_chart import SizeBasis, effective_sizes, funnel_svg

__all__ = ["SizeBasis", "Unranked", "caterpillar_svg", "effective_sizes", "funnel_svg"]
