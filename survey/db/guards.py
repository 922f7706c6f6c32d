"""Rules the ORM enforces on every write, whoever makes it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from survey.db.models import QuestionnaireVersion, VersionStatus
from survey.errors import ConflictError


def _published_version_changed(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if not isinstance(obj, QuestionnaireVersion):
            continue
        state = inspect(obj)
        status_hist = state.attrs.status.history
        was = status_hist.deleted[0] if status_hist.deleted else obj.status
        if was != VersionStatus.published.value:
            continue
        if obj in session.deleted:
            raise ConflictError("A published questionnaire version cannot be deleted.")
        changed = {a.key for a in state.attrs if a.history.has_changes()}
        # Retiring a published version is the one change allowed.
        if changed - {"status"} or obj.status not in (VersionStatus.published.value, VersionStatus.retired.value):
            raise ConflictError("A published questionnaire version is immutable: create a new version instead.")


def install() -> None:
    """Attach the guards to every ORM session (idempotent)."""
    if not event.contains(Session, "before_flush", _published_version_changed):
        event.listen(Session, "before_flush", _published_version_changed)
