"""The survey form POST fuzzed with hypothesis: whatever a phone (or an attacker) sends, no 5xx, nothing
invalid stored, a refused form stores nothing, and text comes back escaped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.app import create_app
from survey.db.models import ReceiptCode, Response
from survey.limits import MemoryCounters
from survey.questionnaires.spec import NOT_APPLICABLE
from tests.conftest import form_token, make_settings
from tests.factories import World, flush_answers, full_answers, new_code, stored_response

NASTY = [
    "' OR 1=1 --",
    "'); DROP TABLE response; --",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{ 7*7 }}",
    "\x00\x1b[31m",
    "Ủy ban nhân dân 😀",
    "na",
    "5",
    "",
]
values = st.one_of(st.sampled_from(NASTY), st.text(max_size=40), st.lists(st.sampled_from(NASTY), max_size=3))


def _count(engine: Engine) -> int:
    flush_answers(engine)  # an answer waiting in the mixing buffer counts
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(Response)) or 0)


@pytest.fixture()
def unlimited(engine: Engine, db_url: str) -> Iterator[TestClient]:
    """A client whose survey requests are not rate-limited: this test sends far more than a phone would."""
    app = create_app(make_settings(db_url, public_rate_limit_per_minute=0), engine, counters=MemoryCounters())
    with TestClient(app=app, raise_server_exceptions=False) as c:
        yield c


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(
    drop=st.sets(st.integers(0, 40), max_size=6),
    changes=st.dictionaries(st.integers(0, 40), values, max_size=4),
    junk=st.dictionaries(st.sampled_from(["q_nope", "id", "wave_id", "unit_id", "flags"]), values, max_size=2),
    comment=st.one_of(st.none(), st.sampled_from(NASTY), st.text(max_size=1500)),
)
def test_any_form_is_stored_whole_or_refused_cleanly(
    unlimited: TestClient,
    engine: Engine,
    world: World,
    drop: set[int],
    changes: dict[int, Any],
    junk: dict[str, Any],
    comment: str | None,
) -> None:
    spec = world.sipas
    answers: dict[str, Any] = dict(full_answers(spec))
    names = sorted(answers)
    for i in drop:
        answers.pop(names[i % len(names)], None)
    for i, value in changes.items():
        answers[names[i % len(names)]] = value
    answers.update(junk)
    if comment is not None:
        answers["q_comment"] = comment
    code = new_code(engine, world)
    path = f"/r/{code}"
    client = unlimited
    page = client.get(path)
    assert page.status_code == 200
    before = _count(engine)
    token = form_token(page.text)
    response = client.post(path, data={**answers, "token": token}, follow_redirects=False)
    assert response.status_code in (303, 400), (response.status_code, response.text[:300])
    with Session(engine) as s:
        spent = s.scalar(select(col(ReceiptCode.spent)).where(col(ReceiptCode.code_hash) == _hash(code)))
    if response.status_code == 400:
        assert _count(engine) == before and spent is False  # refused: nothing written, the code still works
        assert "<script>alert(1)</script>" not in response.text
        assert '"><img src=x onerror' not in response.text
        return
    assert _count(engine) == before + 1 and spent is True
    row = stored_response(engine, token)
    assert row is not None
    vector = row.answers
    assert len(vector) == len(spec.layout)
    for item in spec.items:
        if item.type in ("scale", "choice"):
            k = len(spec.options_of(item))
            byte = vector[spec.column_index[(item.id, None)]]
            assert byte <= k or (byte == NOT_APPLICABLE and spec.not_applicable_of(item) is not None), item.id
        elif item.type == "multi":
            for option in spec.options_of(item):
                assert vector[spec.column_index[(item.id, option.value)]] in (0, 1)
    if row.comment is not None:
        assert len(row.comment) <= 1000
        assert not any(ord(ch) < 32 and ch not in "\n\t" for ch in row.comment)


def _hash(code: str) -> str:
    from survey.receipts import codes

    compact = codes.normalise(code)
    assert compact is not None
    return codes.code_hash(compact)
