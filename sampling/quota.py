"""Progress of a wave's fieldwork against its quotas, per stratum: done, over, on track, behind, not planned.

Rules: a stratum's expected count so far is its target times a share of the wave, either the share of the
wave's period elapsed (the same for every stratum, or per stratum when strata open at different dates) or
the share of the frame's transaction volume seen so far (per stratum, for services whose traffic is not
spread evenly over the period). A stratum is on track when it has at least ``tolerance`` times that
expected count, done when it has reached its target and over when it has reached ``over_factor`` times it.

A full stratum never turns a citizen away. OVER is informational only: the responses beyond the target
are kept, and the weights (post-stratification to the frame) take care of the excess, which only costs
some precision through the spread of the weights. Nothing here should be used to refuse or discard a
response.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike

_RTOL = 1e-9  # thresholds are compared with this relative slack, so 0.9 x 10 = 9 counts as 9 exactly


class QuotaStatus(IntEnum):
    """Status of one stratum; the values are the integers stored in ``QuotaProgress.status``.

    Ordered: for a fixed target and share, more interviews never lower the status (NOT_PLANNED aside,
    which depends on the target only).
    """

    NOT_PLANNED = 0  # target 0: nothing planned (any responses are still kept)
    BEHIND = 1  # achieved < tolerance x expected_by_now
    ON_TRACK = 2  # tolerance x expected_by_now <= achieved < target
    DONE = 3  # target <= achieved < over_factor x target
    OVER = 4  # achieved >= over_factor x target: informational, responses are kept

    @property
    def label(self) -> str:
        """Lower-case label for display: "not planned", "behind", "on track", "done", "over"."""
        return self.name.lower().replace("_", " ")


NOT_PLANNED = QuotaStatus.NOT_PLANNED
BEHIND = QuotaStatus.BEHIND
ON_TRACK = QuotaStatus.ON_TRACK
DONE = QuotaStatus.DONE
OVER = QuotaStatus.OVER


@dataclass(frozen=True, eq=False)
class QuotaProgress:
    """Progress per stratum, in the order of the targets given."""

    expected_by_now: np.ndarray  # float64, target x share, within [0, target]
    share_done: np.ndarray  # float64, achieved / target (may exceed 1); NaN where the target is 0
    status: np.ndarray  # int8, values of QuotaStatus

    def labels(self) -> list[str]:
        """The status of each stratum as its display label (see ``QuotaStatus.label``)."""
        return [QuotaStatus(int(s)).label for s in self.status]

    def counts(self) -> dict[QuotaStatus, int]:
        """Number of strata with each status (every status present, zero when none)."""
        return {s: int(np.count_nonzero(self.status == s)) for s in QuotaStatus}


def _counts(name: str, value: ArrayLike) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional array (one entry per stratum), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr != np.floor(arr)):
        raise ValueError(f"{name} must hold whole, finite, non-negative counts")
    return arr


def _share(name: str, value: ArrayLike, shape: tuple[int, ...], *, scalar_ok: bool) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0 and scalar_ok:
        arr = np.full(shape, float(arr))
    elif arr.shape != shape:
        allowed = "a scalar or one value per stratum" if scalar_ok else "one value per stratum"
        raise ValueError(f"{name} must be {allowed}: shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise ValueError(f"{name} must lie in [0, 1]")
    return arr


def quota_progress(
    target: ArrayLike,
    achieved: ArrayLike,
    *,
    elapsed_share: ArrayLike | None = None,
    expected_share: ArrayLike | None = None,
    tolerance: float = 0.9,
    over_factor: float = 1.2,
) -> QuotaProgress:
    """Classify each stratum's fieldwork as not planned, behind, on track, done or over.

    Parameters
    ----------
    target : the quota n_h per stratum (whole, non-negative), one-dimensional.
    achieved : the completed interviews per stratum so far (whole, non-negative), same shape as ``target``.
    elapsed_share : the share of the wave's period elapsed, in [0, 1]; a scalar (the same for every
        stratum) or one value per stratum. Exactly one of ``elapsed_share`` and ``expected_share``.
    expected_share : the share of each stratum's transaction volume in the frame seen so far, in [0, 1],
        one value per stratum.
    tolerance : in [0, 1]: a stratum is on track with at least ``tolerance`` x expected_by_now interviews
        (0.9 allows 10 % slack; 1 asks for the full expected count; 0 never reports a stratum behind).
    over_factor : > 1: a stratum is over with at least ``over_factor`` x target interviews.

    Returns
    -------
    QuotaProgress
        ``expected_by_now`` = target x share (float64), ``share_done`` = achieved / target (NaN where the
        target is 0) and ``status`` (int8 values of ``QuotaStatus``).

    Raises
    ------
    ValueError
        Negative, fractional or non-finite counts; counts or shares of the wrong shape; a share outside
        [0, 1]; both or neither of ``elapsed_share`` and ``expected_share``; ``tolerance`` outside [0, 1];
        ``over_factor`` not above 1.

    Notes
    -----
    The statuses partition the strata and are decided in this order:

    - NOT_PLANNED: target = 0 (whatever was achieved; such responses are kept as well);
    - OVER: achieved ≥ over_factor x target (and achieved > target, whatever the rounding);
    - DONE: achieved ≥ target;
    - ON_TRACK: achieved ≥ tolerance x expected_by_now;
    - BEHIND: otherwise.

    Since expected_by_now ≤ target and ``tolerance`` ≤ 1 < ``over_factor``, the thresholds increase in
    that order, so for a fixed target and share the status never goes down as interviews come in. The
    thresholds are compared with a relative slack of 1e-9, so that 0.9 x 10 or 1.2 x 5 computed in
    floating point still count as the whole numbers 9 and 6.

    OVER is informational. A full stratum never turns a citizen away: responses beyond the target are
    kept and counted, and the weights (calibrated to the frame's totals) absorb the excess; an over-full
    stratum only costs a little precision through the spread of the weights.

    Examples
    --------
    >>> p = quota_progress([0, 10, 10, 10, 10], [3, 2, 5, 10, 12], elapsed_share=0.5)
    >>> p.expected_by_now.tolist()
    [0.0, 5.0, 5.0, 5.0, 5.0]
    >>> p.labels()
    ['not planned', 'behind', 'on track', 'done', 'over']
    """
    if (elapsed_share is None) == (expected_share is None):
        raise ValueError("give exactly one of elapsed_share and expected_share")
    tol = float(tolerance)
    if not 0 <= tol <= 1:
        raise ValueError(f"tolerance must lie in [0, 1], got {tolerance!r}")
    factor = float(over_factor)
    if not (np.isfinite(factor) and factor > 1):
        raise ValueError(f"over_factor must be a finite number above 1, got {over_factor!r}")

    tgt = _counts("target", target)
    got = _counts("achieved", achieved)
    if got.shape != tgt.shape:
        raise ValueError(f"achieved has shape {got.shape}, target {tgt.shape}")
    if elapsed_share is not None:
        share = _share("elapsed_share", elapsed_share, tgt.shape, scalar_ok=True)
    else:
        assert expected_share is not None
        share = _share("expected_share", expected_share, tgt.shape, scalar_ok=False)

    expected = tgt * share  # a correctly rounded product with a factor ≤ 1 never exceeds the target
    share_done = np.full(tgt.shape, np.nan)
    np.divide(got, tgt, out=share_done, where=tgt > 0)

    slack = 1 - _RTOL
    status = np.select(
        [tgt == 0, (got > tgt) & (got >= factor * tgt * slack), got >= tgt, got >= tol * expected * slack],
        [NOT_PLANNED, OVER, DONE, ON_TRACK],
        default=BEHIND,
    ).astype(np.int8)
    return QuotaProgress(expected_by_now=expected, share_done=share_done, status=status)
