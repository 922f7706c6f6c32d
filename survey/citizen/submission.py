"""What a sent survey page becomes: a checked submission to store, or the page sent back with what to fix."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from survey.citizen import services
from survey.citizen.forms import HONEYPOT_FIELD, FieldError, ParsedAnswers, parse_answers
from survey.citizen.services import AlreadyReceived, SurveyTarget
from survey.db.bounded import BoundedDb
from survey.i18n import N_
from survey.integrity import citizen as integrity
from survey.receipts import codes
from survey.settings import Settings


@dataclass(frozen=True, slots=True)
class Refused:
    """A submission sent back to the citizen: their answers kept, with what to fix."""

    parsed: ParsedAnswers
    notice: str | None = None


def check_submission(
    settings: Settings, target: SurveyTarget, data: dict[str, Any], *, repeat_device: bool = False
) -> services.Submission | Refused:
    """The response a sent page makes, or why it goes back: a stale or tampered token, answers to fix."""
    parsed = parse_answers(target.spec, data, comment_max_chars=settings.comment_max_chars)
    token_value = data.get("token")
    try:
        if not isinstance(token_value, str):
            raise codes.BadToken("missing")
        token = codes.verify_form_token(
            settings.secret_key,
            target.form_target,
            token_value,
            max_age_s=settings.form_token_max_age_hours * 3600,
        )
    except codes.ExpiredToken:
        # Keep what they chose and let them send it again with a fresh token.
        stale = ParsedAnswers(parsed.answers, parsed.comment, (), parsed.kept)
        return Refused(stale, N_("This page was open for a long time. Please check your answers and send them again."))
    except codes.BadToken:
        tampered = FieldError(None, N_("This form could not be checked. Please send your answers again."))
        return Refused(ParsedAnswers(parsed.answers, parsed.comment, (tampered, *parsed.errors), parsed.kept))
    if not parsed.ok:
        return Refused(parsed)
    # Suspect answers are stored with a flag, never refused: see survey/integrity/flags.py.
    honeypot = data.get(HONEYPOT_FIELD)
    flags = integrity.submission_flags(
        honeypot=honeypot if isinstance(honeypot, str) else " ".join(map(str, honeypot or [])),
        elapsed_s=time.time() - token.issued_at,
        needed_s=integrity.min_seconds(target.spec, settings),
        repeat_device=repeat_device,
    )
    return services.Submission(
        target=target,
        answers=parsed.answers,
        comment=parsed.comment,
        submission_key=token.submission_key,
        now=datetime.now(UTC),
        bucket_minutes=settings.time_bucket_minutes,
        flags=flags,
    )


async def store_submission(db: BoundedDb, submission: services.Submission) -> bool:
    """Store a checked submission; False when this page was stored already (sent twice: thank them again)."""
    try:
        await db.write(services.store, submission)
    except AlreadyReceived:
        return False
    except IntegrityError:  # the page's submission key is taken: by this very page, or it is a real error
        if await db.read(services.was_received, submission.submission_key):
            return False
        raise
    return True
