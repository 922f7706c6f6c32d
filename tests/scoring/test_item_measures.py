"""Mean scores, dissatisfied shares and multi-select shares, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.design import Design
from scoring.indices import choice_shares, dissatisfied_shares, mean_scores

LEVELS = np.array([[5, 1], [4, 2], [2, 255], [1, 4], [3, 0], [5, 5]], dtype=np.uint8)


def test_mean_score_excludes_not_applicable_and_blank() -> None:
    est = mean_scores(Design.build(6), LEVELS)
    assert est.point[0].tolist() == pytest.approx([(5 + 4 + 2 + 1 + 3 + 5) / 6, (1 + 2 + 4 + 5) / 4])
    assert est.n[0].tolist() == [6, 4]
    values = np.array([5, 4, 2, 1, 3, 5], dtype=float)
    assert est.se[0, 0] == pytest.approx(values.std(ddof=1) / np.sqrt(6))  # SRS: s/√n
    assert 1.0 <= est.lower[0, 0] < est.point[0, 0] < est.upper[0, 0] <= 5.0


def test_dissatisfied_share_counts_levels_one_and_two() -> None:
    est = dissatisfied_shares(Design.build(6), LEVELS)
    assert est.point[0].tolist() == pytest.approx([2 / 6, 2 / 4])
    assert (est.lower <= est.point).all() and (est.point <= est.upper).all()


def test_choice_shares_are_among_those_who_chose_and_sum_past_one() -> None:
    chosen = np.array([[1, 1, 0], [1, 0, 1], [0, 0, 0], [0, 1, 1]])
    est = choice_shares(Design.build(4), chosen, domain=np.array([0, 0, 0, 0]))
    assert est.point[0].tolist() == pytest.approx([2 / 3, 2 / 3, 2 / 3])
    assert est.point[0].sum() > 1
    assert est.n[0].tolist() == [3, 3, 3]
