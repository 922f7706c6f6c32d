"""Words and numbers shared by the leader's charts and exports, in the reader's locale.

Message ids are English (``survey/locales/*/LC_MESSAGES/leader.po``); data values (unit names, level
codes the province invented) pass through unchanged when no translation exists.
"""

from __future__ import annotations

from collections.abc import Callable

from babel.numbers import format_decimal

from survey.i18n import N_
from survey.results.scores import UnitRow, WaveScores

Gettext = Callable[..., str]

# Level codes of the demo province and of the usual Vietnamese tiers; any other code is shown as it is.
LEVEL_NAMES: dict[str, str] = {
    "province": N_("Provinces"),
    "department": N_("Departments"),
    "district": N_("Districts"),
    "commune": N_("Communes"),
}

TIER_TARGET: dict[int, str] = {
    1: N_("above the target"),
    0: N_("indistinguishable from the target"),
    -1: N_("below the target"),
}
TIER_PROVINCE: dict[int, str] = {
    1: N_("above the province"),
    0: N_("indistinguishable from the province"),
    -1: N_("below the province"),
}
TIER_SHORT: dict[int, str] = {1: N_("Above"), 0: N_("Indistinguishable"), -1: N_("Below")}

RELIABILITY: dict[int, str] = {
    0: N_("ok"),
    1: N_("review: few degrees of freedom"),
    2: N_("unreliable: too few responses or too wide"),
    3: N_("no data"),
}

INTERVAL_METHODS: dict[str, str] = {
    "wilson": N_("Wilson interval with the effective sample size and t quantiles"),
    "korn-graubard": N_("Korn-Graubard (beta) interval"),
    "logit": N_("logit interval with the design-based (linearised) standard error"),
    "wald": N_("Wald interval with t quantiles"),
}

RANK_METHODS: dict[str, str] = {
    "bootstrap": N_("step-down max-t bootstrap (Mogstad, Romano, Shaikh and Wilhelm 2024)"),
    "holm": N_("Bonferroni-Holm step-down (deterministic)"),
    "joint": N_("joint Šidák intervals (Klein, Wright and Wieczorek 2020)"),
}

AGGREGATIONS: dict[str, str] = {
    "mean_of_elements": N_("mean of the element indices (SIPAS-style)"),
    "mean_of_items": N_("mean of all criteria"),
    "pooled": N_("pooled share of satisfied answers"),
}

WEIGHTINGS: dict[str, str] = {
    "equal": N_("equal weights"),
    "equal (the frame misses some strata)": N_("equal weights (the frame misses some strata)"),
    "frame (N_h / r_h, with fpc)": N_(
        "transactions over responses in each stratum, with a finite population correction"
    ),
    "frame (N_h / r_h, no fpc: r_h > N_h)": N_(
        "transactions over responses in each stratum, without a finite population correction"
    ),
}

SCOPES: dict[str, str] = {
    "own": N_("each unit's own responses"),
    "subtree": N_("each unit with every unit below it"),
}

HOW_TO_READ = N_(
    "Read an interval as: the true index lies in it with {level}% confidence; a rank interval 2-7 means "
    "the unit's true rank is somewhere from 2 to 7. Units whose intervals overlap may not really differ."
)


def level_label(_: Gettext, ws: WaveScores, level_name: str | None = None) -> str:
    """The level's name: as given (from the database), else a known level code translated, else the code."""
    if level_name:
        return level_name
    known = LEVEL_NAMES.get(ws.level)
    return _(known) if known else ws.level


def measure_label(_: Gettext, ws: WaveScores, label: str | None = None) -> str:
    """The measure's name: as given, "Overall index" for the index, else its id (an element or criterion)."""
    if label:
        return label
    return _("Overall index") if ws.measure == "index" else ws.measure


def interval_method(ws: WaveScores) -> str:
    """The interval method behind the measure: criteria use ``method``, composites ``composite_method``."""
    j = ws.card.column(ws.measure)
    return ws.card.method if ws.card.kinds[j] == "criterion" else ws.card.composite_method


def translated(_: Gettext, table: dict[str, str], key: str) -> str:
    """``table[key]`` translated, or ``key`` itself when the table does not know it."""
    return _(table[key]) if key in table else key


def unit_name(unit: UnitRow, locale: str) -> str:
    return (unit.name_en or unit.name_vi) if locale == "en" else (unit.name_vi or unit.name_en)


def number(value: float, locale: str, digits: int = 1) -> str:
    """A number for reading (not for machines): the locale's decimal sign and grouping."""
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return str(format_decimal(value, format=pattern, locale=locale))


def percent(share: float, locale: str, digits: int = 1) -> str:
    """A share in [0, 1] as a number on the 0-100 scale (the unit is said once, in the axis or heading)."""
    return number(share * 100.0, locale, digits)
