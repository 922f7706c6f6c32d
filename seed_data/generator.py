"""Synthetic demo data: monthly transaction counts and survey responses, deterministic given a seed.

Each unit gets a true satisfaction level between about 75% and 98%. A respondent's propensity to be
satisfied is drawn around it (Beta), so criteria of one response are correlated as in real data;
criteria differ a little in difficulty; feedback-handling criteria are often "not applicable".
Comments are short Vietnamese remarks whose tone follows the overall rating, picked by Faker (vi_VN).

The questionnaire comes from the caller as a :class:`FormShape` (plain data): this package does not
import the web application.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from faker import Faker

POSITIVE = [
    "Cán bộ hướng dẫn tận tình, nhanh chóng.",
    "Thủ tục nhanh gọn, trả kết quả đúng hẹn.",
    "Nhân viên lịch sự, vui vẻ, giải thích dễ hiểu.",
    "Nơi chờ sạch sẽ, có nước uống, rất thuận tiện.",
    "Rất hài lòng, mong tiếp tục phát huy.",
    "Nộp hồ sơ trực tuyến tiện lợi, không phải đi lại nhiều.",
]
NEGATIVE = [
    "Phải chờ quá lâu, nên bố trí thêm người tiếp nhận.",
    "Hướng dẫn chưa rõ, phải đi lại nhiều lần để bổ sung hồ sơ.",
    "Thái độ cán bộ chưa niềm nở.",
    "Hẹn trả kết quả nhưng bị trễ mà không được báo trước.",
    "Máy lấy số thứ tự hay bị lỗi.",
    "Chỗ ngồi chờ ít, trời nóng, không có quạt.",
]
NEUTRAL = [
    "Nên niêm yết phí, lệ phí rõ hơn.",
    "Cần cập nhật biểu mẫu mới trên trang web.",
    "Bãi giữ xe hơi chật.",
    "Mong có thêm hướng dẫn bằng hình ảnh.",
]


@dataclass(frozen=True, slots=True)
class ItemShape:
    """One questionnaire item as the generator sees it."""

    id: str
    type: str  # "scale", "choice" or "multi"; "text" items are answered by the comments
    role: str  # "criterion", "overall", "assessment", "went_well"... (see the questionnaire files)
    options: tuple[str, ...]  # option values in order; a scale item's are its scale's
    not_applicable: bool = False  # the item's scale offers "not applicable"
    max_choices: int | None = None  # a multi item's limit


@dataclass(frozen=True, slots=True)
class FormShape:
    """A questionnaire as the generator sees it: its items and the byte columns of a stored response."""

    items: tuple[ItemShape, ...]
    columns: tuple[tuple[str, str | None], ...]  # (item id, option value of a multi item, else None) per byte
    not_applicable: int  # the byte stored for "not applicable"


@dataclass(frozen=True, slots=True)
class UnitProfile:
    """A surveyed unit as the generator sees it: index, its fields, its monthly volume and counters."""

    unit_index: int
    field_indices: tuple[int, ...]
    monthly_volume: float
    service_points: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FrameRows:
    unit_index: np.ndarray
    field_index: np.ndarray
    month_start: list[date]
    transactions: np.ndarray


@dataclass(frozen=True, slots=True)
class ResponseBatch:
    unit_index: np.ndarray
    field_index: np.ndarray  # -1 where unknown (counter ratings)
    service_point: np.ndarray  # -1 where none
    submitted_at: list[datetime]
    answers: np.ndarray  # uint8, shape (n, len(form.columns))
    comments: list[str | None]


def true_satisfaction(rng: np.random.Generator, n_units: int) -> np.ndarray:
    """Each unit's true share satisfied, spread over 0.75 to 0.98 (mean about 0.88).

    Tây Ninh's own survey reported 88.87% in 2023; the spread gives league tables something to show.
    """
    return 0.75 + 0.23 * rng.beta(2.0, 1.5, size=n_units)


def months(first: date, last: date) -> list[date]:
    out, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def frame_counts(rng: np.random.Generator, units: Sequence[UnitProfile], month_starts: Sequence[date]) -> FrameRows:
    """Poisson monthly counts per unit x field, with a field mix per unit and a mild seasonal swing."""
    u_idx, f_idx, m_list, counts = [], [], [], []
    for unit in units:
        mix = rng.dirichlet(np.full(len(unit.field_indices), 2.0))
        for k, month in enumerate(month_starts):
            season = 1.0 + 0.15 * np.sin(2 * np.pi * (month.month - 3) / 12) - (0.25 if month.month == 2 else 0.0)
            lam = unit.monthly_volume * season * mix
            draws = rng.poisson(lam)
            for f, c in zip(unit.field_indices, draws, strict=True):
                u_idx.append(unit.unit_index)
                f_idx.append(f)
                m_list.append(month)
                counts.append(int(c))
            _ = k
    return FrameRows(np.array(u_idx), np.array(f_idx), m_list, np.array(counts, dtype=np.int64))


def _office_time(rng: np.random.Generator, start: date, end: date, n: int) -> list[datetime]:
    """Times on weekdays between 07:30 and 17:00 Vietnam time (UTC+7), returned in UTC."""
    days = (end - start).days + 1
    out: list[datetime] = []
    while len(out) < n:
        d = start + timedelta(days=int(rng.integers(0, days)))
        if d.weekday() >= 5:
            continue
        minutes = int(rng.integers(7 * 60 + 30, 17 * 60))
        local = datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(minutes=minutes)
        out.append(local - timedelta(hours=7))
    return out


def _levels_from_satisfied(rng: np.random.Generator, satisfied: np.ndarray) -> np.ndarray:
    """Turn satisfied yes/no into levels 1..5 (4-5 when satisfied)."""
    u = rng.random(satisfied.shape)
    high = np.where(u < 0.45, 5, 4)
    low = np.where(u < 0.6, 3, np.where(u < 0.9, 2, 1))
    return np.where(satisfied, high, low).astype(np.uint8)


def responses(
    rng: np.random.Generator,
    faker: Faker,
    form: FormShape,
    *,
    unit_level: np.ndarray,
    units: Sequence[UnitProfile],
    counts: np.ndarray,
    start: date,
    end: date,
    comment_rate: float = 0.15,
) -> ResponseBatch:
    """``counts[i]`` responses for ``units[i]`` whose unit satisfaction is ``unit_level[i]``."""
    n = int(counts.sum())
    owner = np.repeat(np.arange(len(units)), counts)
    p_unit = unit_level[owner]
    kappa = 8.0
    propensity = rng.beta(p_unit * kappa, (1 - p_unit) * kappa)
    answers = np.zeros((n, len(form.columns)), dtype=np.uint8)
    col = {column: i for i, column in enumerate(form.columns)}

    for item in form.items:
        if item.type == "scale":
            shift = 0.0
            if item.role == "criterion":
                shift = float(rng.normal(0.0, 0.03))
            p = np.clip(propensity + shift, 0.01, 0.995)
            levels = _levels_from_satisfied(rng, rng.random(n) < p)
            if item.not_applicable:
                na_rate = 0.12 if item.id.startswith("fb_") else 0.03
                levels[rng.random(n) < na_rate] = form.not_applicable
            answers[:, col[(item.id, None)]] = levels
        elif item.type == "choice":
            k = len(item.options)
            if item.role == "assessment":
                bad = np.clip((1 - propensity) * 0.25, 0, 0.5)
                pick = np.where(rng.random(n) < bad, rng.integers(2, k + 1, size=n), 1)
                answers[:, col[(item.id, None)]] = pick.astype(np.uint8)
            else:  # optional profile questions, skipped by about a quarter of respondents
                pick = rng.integers(1, k + 1, size=n)
                pick[rng.random(n) < 0.25] = 0
                answers[:, col[(item.id, None)]] = pick.astype(np.uint8)
        elif item.type == "multi":
            opts = item.options
            limit = item.max_choices or len(opts)
            weights = rng.dirichlet(np.full(len(opts), 1.5))
            bias = 1.0 - propensity if item.role != "went_well" else propensity
            how_many = np.minimum(rng.binomial(limit, np.clip(bias * 1.5 + 0.15, 0, 1)), limit)
            for r_ in np.nonzero(how_many)[0]:
                r = int(r_)
                chosen = rng.choice(len(opts), size=int(how_many[r]), replace=False, p=weights)
                for c in chosen:
                    answers[r, col[(item.id, opts[int(c)])]] = 1

    overall_col = col.get(("overall", None))
    comments: list[str | None] = []
    wants = rng.random(n) < comment_rate
    for i in range(n):
        if not wants[i]:
            comments.append(None)
            continue
        level = int(answers[i, overall_col]) if overall_col is not None else 4
        bank = POSITIVE if level >= 4 else NEGATIVE if level <= 2 else NEUTRAL
        text = faker.random_element(bank)
        if faker.random_int(0, 3) == 0:
            text += " " + faker.random_element(NEUTRAL)
        comments.append(text)

    field_index = np.full(n, -1)
    point = np.full(n, -1)
    for i, unit in enumerate(units):
        rows = np.nonzero(owner == i)[0]
        if unit.field_indices:
            field_index[rows] = rng.choice(np.array(unit.field_indices), size=rows.size)
        if unit.service_points:
            point[rows] = rng.choice(np.array(unit.service_points), size=rows.size)
    unit_index = np.array([u.unit_index for u in units])[owner]
    return ResponseBatch(unit_index, field_index, point, _office_time(rng, start, end, n), answers, comments)
