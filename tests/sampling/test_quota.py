"""Quota progress: hand-worked statuses, boundaries, errors, and hypothesis properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sampling.quota import (
    BEHIND,
    DONE,
    NOT_PLANNED,
    ON_TRACK,
    OVER,
    QuotaProgress,
    QuotaStatus,
    quota_progress,
)


def test_every_status_by_hand() -> None:
    """Half the period gone, targets 10: expected 5, on track from 0.9 x 5 = 4.5, i.e. 5 interviews.
    2 -> behind, 5 -> on track, 10 -> done, 12 = 1.2 x 10 -> over; target 0 -> not planned."""
    got = quota_progress([0, 10, 10, 10, 10], [3, 2, 5, 10, 12], elapsed_share=0.5)
    assert isinstance(got, QuotaProgress)
    assert got.expected_by_now.tolist() == [0.0, 5.0, 5.0, 5.0, 5.0]
    assert got.status.tolist() == [NOT_PLANNED, BEHIND, ON_TRACK, DONE, OVER]
    assert got.labels() == ["not planned", "behind", "on track", "done", "over"]
    assert got.share_done[1:].tolist() == pytest.approx([0.2, 0.5, 1.0, 1.2])
    assert np.isnan(got.share_done[0])
    assert got.status.dtype == np.int8
    assert got.expected_by_now.dtype == np.float64


def test_boundaries_are_inclusive() -> None:
    """Target 10, all of the period gone: expected 10, on track from 0.9 x 10 = 9 (inclusive, despite
    floating point), done from 10, over from 12; 11 is done, not over."""
    got = quota_progress([10] * 6, [8, 9, 10, 11, 12, 30], elapsed_share=1.0)
    assert got.status.tolist() == [BEHIND, ON_TRACK, DONE, DONE, OVER, OVER]


def test_over_threshold_in_floating_point() -> None:
    """1.2 x 5 = 6 and 1.2 x 15 = 18 are over exactly at the whole number; one fewer is done."""
    got = quota_progress([5, 5, 15, 15], [5, 6, 17, 18], elapsed_share=0.0)
    assert got.status.tolist() == [DONE, OVER, DONE, OVER]


def test_over_factor_is_a_parameter() -> None:
    got = quota_progress([10, 10, 10], [12, 14, 15], elapsed_share=1.0, over_factor=1.5)
    assert got.status.tolist() == [DONE, DONE, OVER]


def test_tolerance_is_a_parameter() -> None:
    """Expected 8 (target 10, 80 % gone): tolerance 1 asks for 8, 0.5 for 4, 0 never reports behind."""
    target, achieved = [10, 10, 10], [0, 4, 7]
    assert quota_progress(target, achieved, elapsed_share=0.8, tolerance=1.0).status.tolist() == [BEHIND] * 3
    assert quota_progress(target, achieved, elapsed_share=0.8, tolerance=0.5).status.tolist() == [
        BEHIND,
        ON_TRACK,
        ON_TRACK,
    ]
    assert quota_progress(target, achieved, elapsed_share=0.8, tolerance=0.0).status.tolist() == [ON_TRACK] * 3


def test_nothing_expected_yet_is_on_track() -> None:
    got = quota_progress([10, 20], [0, 0], elapsed_share=0.0)
    assert got.status.tolist() == [ON_TRACK, ON_TRACK]
    assert got.expected_by_now.tolist() == [0.0, 0.0]


def test_not_planned_even_with_responses() -> None:
    """A stratum with no target that still got responses keeps them and is not planned (not over)."""
    got = quota_progress([0, 0], [0, 7], elapsed_share=0.3)
    assert got.status.tolist() == [NOT_PLANNED, NOT_PLANNED]
    assert np.all(np.isnan(got.share_done))


def test_elapsed_share_per_stratum() -> None:
    """Strata opened at different dates: 20 % and 80 % of their periods gone."""
    got = quota_progress([100, 100], [30, 30], elapsed_share=[0.2, 0.8])
    assert got.expected_by_now.tolist() == pytest.approx([20.0, 80.0])
    assert got.status.tolist() == [ON_TRACK, BEHIND]


def test_expected_share_from_transaction_volume() -> None:
    """Busy service: 60 % of its volume seen, target 50 -> expected 30, on track from 27.
    Quiet service: 10 % seen, target 40 -> expected 4, on track from 3.6, i.e. 4."""
    got = quota_progress([50, 50, 40, 40], [27, 26, 4, 3], expected_share=[0.6, 0.6, 0.1, 0.1])
    assert got.expected_by_now.tolist() == pytest.approx([30.0, 30.0, 4.0, 4.0])
    assert got.status.tolist() == [ON_TRACK, BEHIND, ON_TRACK, BEHIND]


def test_enum_and_constants() -> None:
    assert [s.label for s in QuotaStatus] == ["not planned", "behind", "on track", "done", "over"]
    assert (NOT_PLANNED, BEHIND, ON_TRACK, DONE, OVER) == (0, 1, 2, 3, 4)
    got = quota_progress([0, 10, 10], [0, 0, 10], elapsed_share=1.0)
    assert got.counts() == {NOT_PLANNED: 1, BEHIND: 1, ON_TRACK: 0, DONE: 1, OVER: 0}


def test_no_strata() -> None:
    got = quota_progress([], [], elapsed_share=0.5)
    assert got.status.shape == (0,)
    assert got.labels() == []


def test_inputs_not_modified() -> None:
    target, achieved, share = np.array([10, 0]), np.array([3, 1]), np.array([0.5, 0.5])
    quota_progress(target, achieved, expected_share=share)
    assert target.tolist() == [10, 0]
    assert achieved.tolist() == [3, 1]
    assert share.tolist() == [0.5, 0.5]


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target": [-1], "achieved": [0], "elapsed_share": 0.5}, "target must hold whole"),
        ({"target": [1], "achieved": [-2], "elapsed_share": 0.5}, "achieved must hold whole"),
        ({"target": [1.5], "achieved": [0], "elapsed_share": 0.5}, "target must hold whole"),
        ({"target": [np.nan], "achieved": [0], "elapsed_share": 0.5}, "target must hold whole"),
        ({"target": [1, 2], "achieved": [0], "elapsed_share": 0.5}, "achieved has shape"),
        ({"target": 5, "achieved": 0, "elapsed_share": 0.5}, "one-dimensional"),
        ({"target": [1], "achieved": [0], "elapsed_share": 1.1}, r"elapsed_share must lie in \[0, 1\]"),
        ({"target": [1], "achieved": [0], "elapsed_share": -0.1}, r"elapsed_share must lie in \[0, 1\]"),
        ({"target": [1], "achieved": [0], "elapsed_share": np.nan}, r"elapsed_share must lie in \[0, 1\]"),
        ({"target": [1, 1], "achieved": [0, 0], "elapsed_share": [0.5]}, "scalar or one value per stratum"),
        ({"target": [1], "achieved": [0], "expected_share": [1.5]}, r"expected_share must lie in \[0, 1\]"),
        ({"target": [1, 1], "achieved": [0, 0], "expected_share": 0.5}, "one value per stratum"),
        ({"target": [1], "achieved": [0]}, "exactly one"),
        ({"target": [1], "achieved": [0], "elapsed_share": 0.5, "expected_share": [0.5]}, "exactly one"),
        ({"target": [1], "achieved": [0], "elapsed_share": 0.5, "tolerance": 1.1}, "tolerance"),
        ({"target": [1], "achieved": [0], "elapsed_share": 0.5, "tolerance": -0.1}, "tolerance"),
        ({"target": [1], "achieved": [0], "elapsed_share": 0.5, "over_factor": 1.0}, "over_factor"),
        ({"target": [1], "achieved": [0], "elapsed_share": 0.5, "over_factor": np.inf}, "over_factor"),
    ],
)
def test_bad_input_raises(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        quota_progress(**kwargs)


# --- properties -------------------------------------------------------------------------------------

SHARE = st.floats(min_value=0.0, max_value=1.0)


@st.composite
def fieldwork(draw: st.DrawFn) -> dict:
    H = draw(st.integers(min_value=1, max_value=10))
    counts = st.lists(st.integers(min_value=0, max_value=2000), min_size=H, max_size=H)
    kwargs: dict = {"target": draw(counts), "achieved": draw(counts)}
    how = draw(st.sampled_from(["elapsed_scalar", "elapsed_vector", "expected"]))
    if how == "elapsed_scalar":
        kwargs["elapsed_share"] = draw(SHARE)
    else:
        key = "elapsed_share" if how == "elapsed_vector" else "expected_share"
        kwargs[key] = draw(st.lists(SHARE, min_size=H, max_size=H))
    kwargs["tolerance"] = draw(SHARE)
    kwargs["over_factor"] = draw(st.floats(min_value=1.0, max_value=3.0, exclude_min=True))
    return kwargs


@settings(max_examples=300, deadline=None)
@given(fieldwork())
def test_statuses_partition_the_strata(p: dict) -> None:
    got = quota_progress(**p)
    target, achieved = np.asarray(p["target"]), np.asarray(p["achieved"])
    assert set(got.status.tolist()) <= {int(s) for s in QuotaStatus}
    assert sum(got.counts().values()) == len(target)
    # each status matches its definition, so exactly one holds per stratum
    assert np.array_equal(got.status == NOT_PLANNED, target == 0)
    planned = target > 0
    assert np.all(achieved[got.status == DONE] >= target[got.status == DONE])
    assert np.all(achieved[got.status == ON_TRACK] < target[got.status == ON_TRACK])
    assert np.all(achieved[got.status == BEHIND] < target[got.status == BEHIND])
    assert np.all(achieved[got.status == OVER] > target[got.status == OVER])
    assert np.all(got.status[planned & (achieved >= target)] >= DONE)


@settings(max_examples=300, deadline=None)
@given(fieldwork())
def test_expected_by_now_within_zero_and_target(p: dict) -> None:
    got = quota_progress(**p)
    target = np.asarray(p["target"], dtype=float)
    assert np.all(got.expected_by_now >= 0)
    assert np.all(got.expected_by_now <= target)


@settings(max_examples=300, deadline=None)
@given(fieldwork(), st.lists(st.integers(min_value=0, max_value=500), min_size=10, max_size=10))
def test_more_interviews_never_move_a_stratum_back(p: dict, extra: list[int]) -> None:
    """Raising ``achieved`` never lowers a status; in particular ON_TRACK/DONE never fall back to BEHIND."""
    before = quota_progress(**p)
    more = [a + e for a, e in zip(p["achieved"], extra, strict=False)]
    after = quota_progress(**{**p, "achieved": more})
    assert np.all(after.status >= before.status)
    was_fine = (before.status == ON_TRACK) | (before.status == DONE)
    assert not np.any(after.status[was_fine] == BEHIND)


@settings(max_examples=200, deadline=None)
@given(fieldwork())
def test_share_done_is_achieved_over_target(p: dict) -> None:
    got = quota_progress(**p)
    target, achieved = np.asarray(p["target"], dtype=float), np.asarray(p["achieved"], dtype=float)
    planned = target > 0
    assert np.all(np.isnan(got.share_done[~planned]))
    assert got.share_done[planned] == pytest.approx(achieved[planned] / target[planned])
