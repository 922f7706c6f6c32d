"""The linkage test: an insider with the database and the secret key tries every join that could tie a stored
response to the receipt code spent for it, and does no better than chance (SQLite and PostgreSQL).

The scenario: ``N`` transactions of one stratum (one wave, unit and field, so the stratum gives nothing away)
are put to the issuing service, which derives and stores their codes as the API does; ``N`` citizens answer in
one time bucket, in the order the codes were issued (the worst case: with storage in arrival order, every order
of one side would be an order of the other) or in a random order; then the mixer flushes the ended bucket.

The attacker reads what a dump or a look at the live database gives: every column, and the system columns
(PostgreSQL ``xmin`` and ``ctid``, SQLite ``rowid``). With the secret, a code's issued transaction is found by
deriving each transaction's code from its stored HMAC. The attacks:

- *equality*: a response and a code written by the same transaction (``xmin``);
- *batch membership*: the codes spent between the flush before a response's batch and that batch;
- *orders*: every order of the responses (id, physical position, ``xmin``, ``submitted_at``) paired rank by
  rank with every order of the codes (id, physical position, ``xmin`` i.e. when spent, the issued transaction's
  id, ``issued_on``).

**The statistic.** For a pairing by ranks, the hits (responses paired with their own code) and Spearman's rank
correlation between a response's rank and its own code's rank. If the responses' order is a uniformly random
permutation, independent of the codes' (what the mixer's shuffle makes it), the hits are the fixed points of a
random permutation, about Poisson(1): P(hits >= 9) is about 1.1e-6; and rho has mean 0 and standard deviation
1/sqrt(N - 1) = 0.071, so P(|rho| > 0.35) is about 8e-7. Over the 40-odd pairings of a run, a false alarm is
rarer than one run in ten thousand. A control stores the same answers as the platform did before the mixer
(code spent and response inserted in one transaction): there the best attack gets every pair right, so the
attacks can find a link when there is one.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Connection, Engine, String, insert, inspect, literal_column, null, select, update
from sqlalchemy.orm import Session
from sqlmodel import SQLModel, col

from survey.api import issuing
from survey.citizen import mixer, services
from survey.db.bounded import BoundedDb
from survey.db.models import (
    PendingResponse,
    ProcedureField,
    ReceiptCode,
    Response,
    Unit,
    pk,
)
from survey.receipts import codes
from tests.conftest import TEST_SECRET
from tests.factories import World, open_receipt_wave

N = 200
MAX_HITS = 8
MAX_RHO = 0.35
BUCKET = 15


@dataclass(frozen=True)
class Scenario:
    wave_id: int
    codes: list[str]  # in the order they were issued


@dataclass(frozen=True)
class Seen:
    """One row as the attacker sees it. ``truth`` is the submission key (responses) or the code hash (codes):
    the test's answer sheet, never used by an attack."""

    truth: str
    id: int
    physical: tuple[int, ...]
    xmin: int | None
    when: Any  # submitted_at of a response, issued_on of a code
    txn_id: int = 0  # a code's issued transaction, joined with the secret


def _scenario(engine: Engine, world: World) -> Scenario:
    """A wave of its own; ``N`` transactions put to the issuing service, each selected and given a code."""
    with Session(engine, expire_on_commit=False) as s:
        wave = open_receipt_wave(s, world, prefix="link")
        s.commit()
        unit, field = s.get(Unit, world.unit_id), s.get(ProcedureField, world.field_id)
        assert unit is not None and field is not None
        stratum = issuing.Stratum(wave, unit, field)
        issued = []
        for i in range(N):
            decision = issuing.decide(
                s,
                stratum,
                transaction_ref=f"000.00.21.H56-{world.today:%y%m%d}-{i:04d}",
                secret=TEST_SECRET,
                today=world.today - timedelta(days=1),
                valid_days=60,
            )
            assert decision.code is not None  # no plan for the stratum: every transaction is selected
            issued.append(decision.code)
    return Scenario(pk(wave), issued)


def _answers(engine: Engine, world: World, scenario: Scenario, order: str, when: datetime) -> dict[str, str]:
    """Every code answered once at ``when``, in ``order``, through the citizen path's ``store``; returns code
    hash -> submission key."""
    chosen = list(scenario.codes)
    if order == "random order":
        random.Random(20261214).shuffle(chosen)
    db, rng = BoundedDb(engine), random.Random(7)
    truth = {}
    for code in chosen:
        with engine.connect() as conn:
            target = services.resolve_receipt(conn, code, world.today)
        answers = bytes([rng.randint(1, 5)] + [0] * (len(target.spec.layout) - 1))
        key = secrets.token_hex(32)
        with db.transaction() as conn:
            services.store(conn, services.Submission(target, answers, None, key, when, BUCKET))
        truth[codes.code_hash(code)] = key
    return truth


def _naive_answers(engine: Engine, world: World, scenario: Scenario) -> dict[str, str]:
    """The control: how answers were stored before the mixer, the code spent and the response inserted in one
    transaction, in the order they arrive (here: the order the codes were issued)."""
    truth = {}
    for code in scenario.codes:
        with engine.connect() as conn:
            target = services.resolve_receipt(conn, code, world.today)
        key = secrets.token_hex(32)
        submission = services.Submission(target, bytes(len(target.spec.layout)), None, key, datetime.now(UTC), BUCKET)
        with BoundedDb(engine).transaction() as conn:
            conn.execute(update(ReceiptCode).where(col(ReceiptCode.code_hash) == target.code_hash).values(spent=True))
            conn.execute(insert(Response), submission.row())
        truth[codes.code_hash(code)] = key
    return truth


# -- what the insider reads ------------------------------------------------------------------------------------


def _system_columns(conn: Connection) -> list[Any]:
    if conn.dialect.name == "postgresql":
        return [literal_column("xmin::text::bigint").label("xmin"), literal_column("ctid::text").label("physical")]
    return [null().label("xmin"), literal_column("rowid").label("physical")]


def _physical(value: Any) -> tuple[int, ...]:
    if isinstance(value, int):  # SQLite rowid
        return (value,)
    block, offset = str(value).strip("()").split(",")  # PostgreSQL ctid "(block,offset)"
    return int(block), int(offset)


def dump(engine: Engine, wave_id: int) -> tuple[list[Seen], list[Seen]]:
    """The wave's responses and spent codes, with each code's issued transaction found through the secret."""
    r, c, t = (SQLModel.metadata.tables[name].c for name in ("response", "receipt_code", "issued_transaction"))
    with engine.connect() as conn:
        system = _system_columns(conn)
        responses = [
            Seen(row.submission_key, row.id, _physical(row.physical), row.xmin, row.submitted_at)
            for row in conn.execute(select(r.id, r.submission_key, r.submitted_at, *system).where(r.wave_id == wave_id))
        ]
        transaction_of = {
            codes.code_hash(codes.derive_receipt_code(TEST_SECRET, row.ref_hash)): row.id
            for row in conn.execute(select(t.id, t.ref_hash).where(t.wave_id == wave_id))
        }
        spent = [
            Seen(row.code_hash, row.id, _physical(row.physical), row.xmin, row.issued_on, transaction_of[row.code_hash])
            for row in conn.execute(
                select(c.id, c.code_hash, c.issued_on, *system).where(c.wave_id == wave_id, c.spent.is_(True))
            )
        ]
    return responses, spent


# -- the attacks -----------------------------------------------------------------------------------------------

Order = Callable[[Seen], Any]
RESPONSE_ORDERS: dict[str, Order] = {
    "response id": lambda r: r.id,
    "response physical position": lambda r: r.physical,
    "response xmin": lambda r: (r.xmin or 0, r.physical),
    "response submitted_at": lambda r: (r.when, r.physical),
}
CODE_ORDERS: dict[str, Order] = {
    "code id": lambda c: c.id,
    "code physical position": lambda c: c.physical,
    "code xmin (when spent)": lambda c: (c.xmin or 0, c.physical),
    "issued transaction id": lambda c: c.txn_id,
    "code issued_on": lambda c: (c.when, c.id),
}


@dataclass(frozen=True)
class Result:
    attack: str
    hits: int
    rho: float | None = None


def by_ranks(responses: Sequence[Seen], spent: Sequence[Seen], truth: dict[str, str]) -> list[Result]:
    """Every order of the responses paired rank by rank with every order of the codes."""
    key_of = {c.truth: truth[c.truth] for c in spent}
    results = []
    for r_name, r_order in RESPONSE_ORDERS.items():
        ranked = sorted(responses, key=r_order)
        for c_name, c_order in CODE_ORDERS.items():
            paired = sorted(spent, key=c_order)
            code_rank = {key_of[c.truth]: i for i, c in enumerate(paired)}
            own = np.array([code_rank[r.truth] for r in ranked], dtype=float)
            hits = int(np.sum(own == np.arange(len(ranked))))
            rho = float(np.corrcoef(np.arange(len(ranked)), own)[0, 1])
            results.append(Result(f"{r_name} ~ {c_name}", hits, rho))
    return results


def by_xmin(responses: Sequence[Seen], spent: Sequence[Seen], truth: dict[str, str]) -> list[Result]:
    """PostgreSQL: same transaction (equal ``xmin``), and batch membership."""
    if responses[0].xmin is None:
        return []
    code_by_xmin: dict[int, list[Seen]] = {}
    for c in spent:
        code_by_xmin.setdefault(c.xmin or 0, []).append(c)
    equal = [(r, code_by_xmin.get(r.xmin or 0, [])) for r in responses]
    hits = sum(1 for r, found in equal if len(found) == 1 and truth[found[0].truth] == r.truth)
    # a batch's window: after the previous batch of this wave, before this one; a uniform guess inside it
    batches = sorted({r.xmin or 0 for r in responses})
    windows = {
        b: [c for c in spent if (batches[i - 1] if i else 0) < (c.xmin or 0) <= b] for i, b in enumerate(batches)
    }
    expected_hits = sum(
        1 / len(windows[r.xmin or 0]) for r in responses if any(truth[c.truth] == r.truth for c in windows[r.xmin or 0])
    )
    return [Result("same transaction (xmin equality)", hits), Result("batch membership", round(expected_hits))]


def attacks(engine: Engine, wave_id: int, truth: dict[str, str]) -> list[Result]:
    responses, spent = dump(engine, wave_id)
    assert len(responses) == len(spent) == len(truth) == N
    return by_xmin(responses, spent, truth) + by_ranks(responses, spent, truth)


def _report(title: str, results: Sequence[Result]) -> None:
    print(f"\n{title}: best hits {max(r.hits for r in results)} of {N}")
    for r in sorted(results, key=lambda r: -r.hits)[:6]:
        print(f"  {r.hits:4d}  rho {'  -  ' if r.rho is None else f'{r.rho:+.2f}'}  {r.attack}")


# -- the tests -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["issue order", "random order"])
def test_no_join_links_a_response_to_its_code_better_than_chance(engine: Engine, world: World, order: str) -> None:
    scenario = _scenario(engine, world)
    when = datetime.now(UTC)  # the current bucket: no app's mixer flushes it before it has ended
    truth = _answers(engine, world, scenario, order, when)
    if engine.dialect.name == "postgresql":
        # the limit the README states: while answers wait in the buffer, each shares its code's xmin
        xmin = literal_column("xmin::text", String())
        of_wave = (col(ReceiptCode.wave_id) == scenario.wave_id, col(ReceiptCode.spent).is_(True))
        with engine.connect() as conn:
            waiting = set(conn.scalars(select(xmin).select_from(PendingResponse)))
            spent = set(conn.scalars(select(xmin).select_from(ReceiptCode).where(*of_wave)))
        assert len(spent) == N and spent <= waiting
    bucket_start = services.bucket(when, BUCKET)
    ended = bucket_start + timedelta(minutes=BUCKET, seconds=mixer.GRACE_S)
    assert mixer.flush_now(BoundedDb(engine), BUCKET, now=ended) >= N  # the mixer's round after the bucket ended

    results = attacks(engine, scenario.wave_id, truth)
    _report(f"{engine.dialect.name}, answered in {order}, through the mixer", results)
    assert len(results) == (22 if engine.dialect.name == "postgresql" else 20)
    for result in results:
        assert result.hits <= MAX_HITS, result
        assert result.rho is None or abs(result.rho) <= MAX_RHO, result
    # and no timestamp finer than the bucket: every response says the bucket, nothing says when a code was spent
    responses, _spent = dump(engine, scenario.wave_id)
    assert {r.when for r in responses} == {bucket_start}


def test_the_control_storage_without_the_mixer_is_linked_by_the_same_attacks(engine: Engine, world: World) -> None:
    scenario = _scenario(engine, world)
    truth = _naive_answers(engine, world, scenario)
    results = attacks(engine, scenario.wave_id, truth)
    _report(f"{engine.dialect.name}, the control (code spent and response inserted together)", results)
    assert max(r.hits for r in results) == N
    if engine.dialect.name == "postgresql":
        assert results[0].attack.startswith("same transaction") and results[0].hits == N


def test_no_table_records_when_a_code_was_spent(engine: Engine) -> None:
    """Receipt codes and issued transactions carry dates, never a time of day: nothing finer than the bucket."""
    for table in ("receipt_code", "issued_transaction"):
        declared = SQLModel.metadata.tables[table].columns
        assert not [c.name for c in declared if c.type.python_type is datetime], table
        assert {c.name for c in declared if c.type.python_type is date} <= {"issued_on", "expires_on", "asked_on"}
        assert {c["name"] for c in inspect(engine).get_columns(table)} == {c.name for c in declared}
