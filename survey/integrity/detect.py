"""Pure detectors of stuffed ratings: numpy arrays in, boolean masks and test statistics out.

No database, no web: ``survey.integrity.services`` turns a wave's responses into these arrays. Every
detector flags *responses* (a mask over the rows it was given), except ``proportion_jump``, which tests
a unit's index between two periods and says nothing about any single response.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True, slots=True)
class Bursts:
    """Per response: whether it lies in a burst, its bucket's count, the expected count and the tail p-value."""

    mask: np.ndarray  # bool
    count: np.ndarray  # int64, responses in the same (group, bucket)
    expected: np.ndarray  # float64, the group's usual rate per bucket, without this bucket
    p_value: np.ndarray  # float64, P(X >= count) for X ~ Poisson(expected)


def bursts(
    group: np.ndarray, bucket: np.ndarray, exposure: np.ndarray, *, alpha: float = 1e-4, min_count: int = 8
) -> Bursts:
    """Responses that arrived in a time bucket far busier than their group's (service point's) usual rate.

    Parameters
    ----------
    group : int array (n,)
        Group code of each response, 0..G-1 (a service point, or a unit for receipt responses).
    bucket : int array (n,)
        Time bucket of each response (e.g. minutes since the epoch // 15).
    exposure : float array (G,)
        Buckets each group was open for responses over the period (e.g. opening days x buckets a day).
    alpha : float
        Upper-tail probability below which a bucket is a burst (small: many buckets are tested).
    min_count : int
        Fewer responses than this in one bucket are never a burst, however quiet the point.

    Returns
    -------
    Bursts

    Notes
    -----
    For a bucket with ``c`` of its group's ``n`` responses the usual rate is estimated without it,
    ``lambda = (n - c) / (E - 1)`` with ``E`` the group's exposure (leave one out, so a burst does not
    raise its own baseline), floored at ``1 / E`` (a group with no other response is treated as if it had
    one). The bucket is a burst when ``c >= min_count`` and ``P(X >= c) < alpha`` for
    ``X ~ Poisson(lambda)``: the Poisson upper-tail test for an excess of counts (e.g. Kulldorff's scan
    statistic uses the same null; here the windows are fixed buckets).
    """
    group = np.asarray(group, dtype=np.int64)
    bucket = np.asarray(bucket, dtype=np.int64)
    exposure = np.asarray(exposure, dtype=np.float64)
    n = group.size
    if n == 0:
        empty = np.zeros(0)
        return Bursts(np.zeros(0, dtype=bool), empty.astype(np.int64), empty, empty)
    keys = np.stack([group, bucket], axis=1)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    count = counts[inverse].astype(np.int64)
    per_group = np.bincount(group, minlength=exposure.size).astype(np.float64)
    e = np.maximum(exposure[group], 1.0)
    expected = np.maximum((per_group[group] - count) / np.maximum(e - 1.0, 1.0), 1.0 / e)
    p_value = stats.poisson.sf(count - 1, expected)
    mask = (count >= min_count) & (p_value < alpha)
    return Bursts(mask, count, expected, p_value)


def outside_hours(
    minute_of_day: np.ndarray,
    weekday: np.ndarray,
    *,
    opens: int = 7 * 60,
    closes: int = 17 * 60 + 30,
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4),
) -> np.ndarray:
    """Responses sent on a closed day or before ``opens`` / at or after ``closes`` (minutes, local time).

    ``weekday`` is 0 = Monday .. 6 = Sunday. With times rounded down to a bucket that divides the opening
    and closing minutes, the test is exact: a bucket starting before ``opens`` ends before it too.
    """
    minute_of_day = np.asarray(minute_of_day, dtype=np.int64)
    open_day = np.isin(np.asarray(weekday, dtype=np.int64), np.asarray(weekdays, dtype=np.int64))
    return ~open_day | (minute_of_day < opens) | (minute_of_day >= closes)


def repeated_patterns(
    group: np.ndarray, window: np.ndarray, answers: np.ndarray, *, min_repeats: int = 5
) -> np.ndarray:
    """Responses whose full answer vector occurs at least ``min_repeats`` times in the same group and window.

    ``answers`` is the (n, k) matrix of stored answer bytes. Real people at one counter in one hour do
    agree, but rarely on every byte of a long questionnaire many times over: the threshold belongs to
    the questionnaire's length (a 3-item quick rating repeats by chance far more than a 30-item survey).
    """
    answers = np.asarray(answers)
    n = answers.shape[0]
    if n == 0:
        return np.zeros(0, dtype=bool)
    keys = np.column_stack(
        [np.asarray(group, dtype=np.int64), np.asarray(window, dtype=np.int64), answers.astype(np.int64)]
    )
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    return np.asarray(counts[inverse.reshape(-1)] >= min_repeats)


def straight_lined(answers: np.ndarray, columns: np.ndarray | list[int], *, scale_max: int = 5) -> np.ndarray:
    """Responses giving every criterion in ``columns`` the same answer on the 1..``scale_max`` scale.

    Not answered (0) and not applicable (255) break the line. Alone this is no evidence (a delighted
    citizen may well answer 5 throughout); combined with ``repeated_patterns`` it marks the typical
    stuffed rating.
    """
    answers = np.asarray(answers)
    cols = np.asarray(columns, dtype=np.int64)
    if answers.shape[0] == 0 or cols.size == 0:
        return np.zeros(answers.shape[0], dtype=bool)
    block = answers[:, cols].astype(np.int64)
    valid = (block >= 1) & (block <= scale_max)
    return np.asarray(valid.all(axis=1) & (block == block[:, :1]).all(axis=1))


@dataclass(frozen=True, slots=True)
class Jump:
    """A two-proportion z-test per unit between an earlier and a later period."""

    p1: np.ndarray
    p2: np.ndarray
    z: np.ndarray
    p_value: np.ndarray  # two-sided
    significant: np.ndarray  # bool: p_value < alpha


def proportion_jump(x1: np.ndarray, n1: np.ndarray, x2: np.ndarray, n2: np.ndarray, *, alpha: float = 0.001) -> Jump:
    """Did a unit's share of satisfied responses change between two consecutive periods?

    Parameters
    ----------
    x1, n1 : int arrays
        Satisfied responses and responses in the earlier period, one entry per unit.
    x2, n2 : int arrays
        The same for the later period.
    alpha : float
        Two-sided level below which a change is reported (small: many units are tested).

    Returns
    -------
    Jump

    Notes
    -----
    The pooled two-proportion z statistic ``z = (p2 - p1) / sqrt(p (1 - p) (1/n1 + 1/n2))`` with
    ``p = (x1 + x2) / (n1 + n2)`` (Agresti, *Categorical Data Analysis*, 3rd ed., sec. 3.1.2). Where a
    period is empty or the pooled share is 0 or 1 there is nothing to test: ``z = 0``, ``p = 1``.
    """
    x1, n1, x2, n2 = (np.asarray(a, dtype=np.float64) for a in (x1, n1, x2, n2))
    with np.errstate(all="ignore"):
        p1 = np.where(n1 > 0, x1 / n1, np.nan)
        p2 = np.where(n2 > 0, x2 / n2, np.nan)
        pooled = (x1 + x2) / (n1 + n2)
        se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
        testable = (n1 > 0) & (n2 > 0) & (se > 0)
        z = np.where(testable, (p2 - p1) / np.where(testable, se, 1.0), 0.0)
    p_value = np.where(testable, 2.0 * stats.norm.sf(np.abs(z)), 1.0)
    return Jump(p1, p2, z, p_value, p_value < alpha)
