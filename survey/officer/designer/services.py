"""The questionnaire designer: drafts, edits, previews, publication, comparison and deletion. No HTTP here.

Rules:

- Questionnaires are shared by the whole platform (they have no unit): admins and officers design them,
  leaders read them. Every change is audited (entity ``questionnaire_version``).
- A draft (status ``draft``) stores its raw definition, valid or not yet; it is validated when shown and
  when published. Publishing stores the validated spec with its answer layout: from then on the version is
  immutable (``survey.db.guards``). "Editing" a published version makes a new draft from it.
- A version can be deleted only while it is a draft that no wave uses and no response answered; published
  versions are kept (responses and waves refer to them, and the database guard refuses).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from seed_data import QUESTIONNAIRE_DIR
from survey.auth.services import Principal
from survey.db.audited import audit
from survey.db.models import Questionnaire, QuestionnaireVersion, Response, Role, VersionStatus, Wave, pk
from survey.errors import ConflictError, ForbiddenError, NotFoundError, QuestionnaireError, SipasError
from survey.i18n import N_
from survey.officer.designer import forms
from survey.officer.designer.diff import Change, diff
from survey.officer.designer.forms import Problem
from survey.questionnaires.spec import Spec, load_file, parse

ENTITY = "questionnaire_version"
EDITORS = (Role.admin, Role.officer)


class DraftInvalid(SipasError):
    """A draft that cannot be published yet; ``problems`` says why, per section and item."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(N_("The questionnaire has problems to fix before it can be published."))
        self.problems = problems


def ensure_editor(viewer: Principal) -> None:
    if viewer.role not in EDITORS:
        raise ForbiddenError(N_("Your role does not give access to this page."))


def draft_hash(definition: dict[str, Any]) -> str:
    canonical = json.dumps(definition, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def raw_definition(version: QuestionnaireVersion) -> dict[str, Any]:
    """A copy of a version's definition without its stored layout (what the designer edits)."""
    return {k: copy.deepcopy(v) for k, v in (version.definition or {}).items() if k != "layout"}


# --- Reading ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionRow:
    id: int
    version: int
    status: str
    title_vi: str
    title_en: str
    created_at: datetime
    published_at: datetime | None
    responses: int
    waves: int

    def title(self, locale: str) -> str:
        return self.title_en if locale == "en" else self.title_vi

    @property
    def deletable(self) -> bool:
        return self.status == VersionStatus.draft.value and not self.responses and not self.waves


@dataclass(frozen=True, slots=True)
class QuestionnaireRow:
    id: int
    code: str
    title_vi: str
    title_en: str
    versions: list[VersionRow]

    def title(self, locale: str) -> str:
        return self.title_en if locale == "en" else self.title_vi


def _counts(session: Session, column: Any, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = session.execute(select(column, func.count()).where(column.in_(ids)).group_by(column)).all()
    return {int(k): int(n) for k, n in rows}


def list_questionnaires(session: Session) -> list[QuestionnaireRow]:
    """Every questionnaire with its versions (newest first), responses and waves per version."""
    questionnaires = session.scalars(select(Questionnaire).order_by(col(Questionnaire.code))).all()
    versions = session.scalars(select(QuestionnaireVersion).order_by(col(QuestionnaireVersion.version).desc())).all()
    ids = [pk(v) for v in versions]
    responses = _counts(session, col(Response.questionnaire_version_id), ids)
    waves = _counts(session, col(Wave.questionnaire_version_id), ids)
    by_q: dict[int, list[VersionRow]] = {}
    for v in versions:
        title = (v.definition or {}).get("title") or {}
        by_q.setdefault(v.questionnaire_id, []).append(
            VersionRow(
                id=pk(v),
                version=v.version,
                status=v.status,
                title_vi=str(title.get("vi") or ""),
                title_en=str(title.get("en") or ""),
                created_at=v.created_at,
                published_at=v.published_at,
                responses=responses.get(pk(v), 0),
                waves=waves.get(pk(v), 0),
            )
        )
    return [
        QuestionnaireRow(id=pk(q), code=q.code, title_vi=q.title_vi, title_en=q.title_en, versions=by_q.get(pk(q), []))
        for q in questionnaires
    ]


@dataclass(frozen=True, slots=True)
class TemplateChoice:
    name: str
    code: str
    title_vi: str
    title_en: str

    def title(self, locale: str) -> str:
        return self.title_en if locale == "en" else self.title_vi


def template_files(directory: Path = QUESTIONNAIRE_DIR) -> list[TemplateChoice]:
    out = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            spec = load_file(path)
        except QuestionnaireError:
            continue
        out.append(TemplateChoice(name=path.name, code=spec.code, title_vi=spec.title.vi, title_en=spec.title.en))
    return out


@dataclass(frozen=True, slots=True)
class VersionDetail:
    id: int
    questionnaire_id: int
    code: str
    version: int
    status: str
    definition: dict[str, Any]
    content_hash: str
    created_at: datetime
    published_at: datetime | None
    responses: int
    waves: int
    problems: list[Problem]

    @property
    def is_draft(self) -> bool:
        return self.status == VersionStatus.draft.value

    @property
    def deletable(self) -> bool:
        return self.is_draft and not self.responses and not self.waves

    def title(self, locale: str) -> str:
        title = self.definition.get("title") or {}
        return str(title.get(locale) or title.get("vi") or self.code)

    def spec(self) -> Spec | None:
        """The validated spec, or None while the draft has problems."""
        if self.problems:
            return None
        return parse(self.definition, f"{self.code} v{self.version}")


def _load(session: Session, version_id: int) -> QuestionnaireVersion:
    version = session.get(QuestionnaireVersion, version_id)
    if version is None:
        raise NotFoundError(N_("There is no such questionnaire version."))
    return version


def get_version(session: Session, *, version_id: int) -> VersionDetail:
    version = _load(session, version_id)
    questionnaire = session.get(Questionnaire, version.questionnaire_id)
    assert questionnaire is not None
    definition = raw_definition(version)
    responses = _counts(session, col(Response.questionnaire_version_id), [version_id]).get(version_id, 0)
    waves = _counts(session, col(Wave.questionnaire_version_id), [version_id]).get(version_id, 0)
    return VersionDetail(
        id=version_id,
        questionnaire_id=version.questionnaire_id,
        code=questionnaire.code,
        version=version.version,
        status=version.status,
        definition=definition,
        content_hash=version.content_hash,
        created_at=version.created_at,
        published_at=version.published_at,
        responses=responses,
        waves=waves,
        problems=forms.problems(definition),
    )


def other_versions(session: Session, *, version_id: int) -> list[tuple[int, str, int]]:
    """(id, code, version) of every other version, to compare against."""
    rows = session.execute(
        select(col(QuestionnaireVersion.id), col(Questionnaire.code), col(QuestionnaireVersion.version))
        .join(Questionnaire, col(Questionnaire.id) == col(QuestionnaireVersion.questionnaire_id))
        .where(col(QuestionnaireVersion.id) != version_id)
        .order_by(col(Questionnaire.code), col(QuestionnaireVersion.version))
    ).all()
    return [(int(cast(int, i)), str(c), int(v)) for i, c, v in rows]


@dataclass(frozen=True, slots=True)
class Comparison:
    old: VersionDetail
    new: VersionDetail
    changes: list[Change]


def compare(session: Session, *, version_id: int, against_id: int) -> Comparison:
    """What changed from version ``against_id`` to version ``version_id``."""
    new = get_version(session, version_id=version_id)
    old = get_version(session, version_id=against_id)
    return Comparison(old=old, new=new, changes=diff(old.definition, new.definition))


# --- Writing ------------------------------------------------------------------------------------------------------


def _next_version(session: Session, questionnaire_id: int) -> int:
    top = session.scalar(
        select(func.max(QuestionnaireVersion.version)).where(
            col(QuestionnaireVersion.questionnaire_id) == questionnaire_id
        )
    )
    return int(top or 0) + 1


def _summary(definition: dict[str, Any]) -> dict[str, Any]:
    sections = definition.get("sections") or []
    return {
        "code": definition.get("code"),
        "version": definition.get("version"),
        "title": (definition.get("title") or {}).get("vi"),
        "sections": len(sections),
        "items": sum(len(s.get("items") or []) for s in sections),
    }


def create_draft(session: Session, *, viewer: Principal, source: str, code: str = "") -> QuestionnaireVersion:
    """A new draft from a template file (``template:<file>``) or a copy of a version (``version:<id>``).

    The draft is the next version of the questionnaire ``code`` (by default the source's own), created if new.
    """
    ensure_editor(viewer)
    kind, _, ref = source.partition(":")
    if kind == "template":
        names = {t.name for t in template_files()}
        if ref not in names:
            raise NotFoundError(N_("There is no such questionnaire template."))
        definition = load_file(QUESTIONNAIRE_DIR / ref).model_dump(mode="json", exclude_none=True)
    elif kind == "version" and ref.isdigit():
        definition = raw_definition(_load(session, int(ref)))
    else:
        raise NotFoundError(N_("Choose a template or a version to start from."))
    code = code or str(definition.get("code") or "")
    if not forms.CODE_RE.fullmatch(code):
        raise ConflictError(N_("A code has 1 to 60 lowercase letters a-z, digits, hyphens or underscores."))
    questionnaire = session.scalars(select(Questionnaire).where(col(Questionnaire.code) == code)).first()
    if questionnaire is None:
        title = definition.get("title") or {}
        questionnaire = Questionnaire(
            code=code, title_vi=str(title.get("vi") or code)[:300], title_en=str(title.get("en") or code)[:300]
        )
        session.add(questionnaire)
        session.flush()
        audit(
            session,
            actor=viewer.username,
            user_id=viewer.id,
            action="create",
            entity="questionnaire",
            entity_id=questionnaire.id,
            after={"code": code},
        )
    definition["code"] = code
    definition["version"] = _next_version(session, pk(questionnaire))
    version = QuestionnaireVersion(
        questionnaire_id=pk(questionnaire),
        version=definition["version"],
        status=VersionStatus.draft.value,
        definition=definition,
        content_hash=draft_hash(definition),
    )
    session.add(version)
    session.flush()
    audit(
        session,
        actor=viewer.username,
        user_id=viewer.id,
        action="create_draft",
        entity=ENTITY,
        entity_id=version.id,
        after={**_summary(definition), "source": source},
    )
    session.commit()
    return version


@dataclass(frozen=True, slots=True)
class EditResult:
    version_id: int
    anchor: str
    action: str
    problems: list[Problem]
    new_draft: bool


def save_edit(session: Session, *, viewer: Principal, version_id: int, data: dict[str, Any]) -> EditResult:
    """Store what the edit form sent (and apply the button's structural change) to a draft.

    Sent for a published version, it makes a new draft with these changes: published versions never change.
    """
    ensure_editor(viewer)
    version = _load(session, version_id)
    new_draft = version.status != VersionStatus.draft.value
    if new_draft:
        version = create_draft(session, viewer=viewer, source=f"version:{version_id}")
    before = raw_definition(version)
    posted = forms.parse_edit(data, base=before)
    definition, anchor = forms.apply_action(posted.definition, posted.action, posted.target)
    changes = diff(before, definition)
    version.definition = definition
    version.content_hash = draft_hash(definition)
    audit(
        session,
        actor=viewer.username,
        user_id=viewer.id,
        action="edit_draft",
        entity=ENTITY,
        entity_id=version.id,
        before={"content_hash": draft_hash(before), **_summary(before)},
        after={
            "content_hash": version.content_hash,
            **_summary(definition),
            "button": posted.action,
            "changes": [c.message.format(**c.params) for c in changes[:50]],
        },
    )
    session.commit()
    return EditResult(
        version_id=pk(version),
        anchor=anchor,
        action=posted.action,
        problems=forms.problems(definition),
        new_draft=new_draft,
    )


def publish(session: Session, *, viewer: Principal, version_id: int) -> QuestionnaireVersion:
    """Validate a draft and publish it: from now on it is immutable and waves may use it."""
    ensure_editor(viewer)
    version = _load(session, version_id)
    if version.status != VersionStatus.draft.value:
        raise ConflictError(N_("This version is already published: it cannot change."))
    questionnaire = session.get(Questionnaire, version.questionnaire_id)
    assert questionnaire is not None
    definition = raw_definition(version)
    definition["code"], definition["version"] = questionnaire.code, version.version
    found = forms.problems(definition)
    if found:
        raise DraftInvalid(found)
    spec = parse(definition, f"{questionnaire.code} v{version.version}")
    version.definition = spec.to_definition()
    version.content_hash = spec.content_hash()
    version.status = VersionStatus.published.value
    version.published_at = datetime.now(UTC)
    questionnaire.title_vi, questionnaire.title_en = spec.title.vi[:300], spec.title.en[:300]
    audit(
        session,
        actor=viewer.username,
        user_id=viewer.id,
        action="publish",
        entity=ENTITY,
        entity_id=version.id,
        before={"status": VersionStatus.draft.value},
        after={
            "status": version.status,
            "code": spec.code,
            "version": spec.version,
            "content_hash": version.content_hash,
        },
    )
    session.commit()
    return version


def delete_version(session: Session, *, viewer: Principal, version_id: int) -> tuple[str, int]:
    """Delete a draft no wave uses and no response answered (a questionnaire left empty goes too)."""
    ensure_editor(viewer)
    detail = get_version(session, version_id=version_id)
    if not detail.is_draft:
        raise ConflictError(
            N_(
                "A published version cannot be deleted: waves and responses may refer to it, now or later. "
                "Make a new version instead."
            )
        )
    if detail.responses or detail.waves:
        raise ConflictError(N_("This version is used by a wave or has responses: it cannot be deleted."))
    version = _load(session, version_id)
    session.delete(version)
    session.flush()
    audit(
        session,
        actor=viewer.username,
        user_id=viewer.id,
        action="delete_draft",
        entity=ENTITY,
        entity_id=version_id,
        before={**_summary(detail.definition), "status": detail.status, "content_hash": detail.content_hash},
    )
    left = session.scalar(
        select(func.count()).where(col(QuestionnaireVersion.questionnaire_id) == detail.questionnaire_id)
    )
    if not left:
        questionnaire = session.get(Questionnaire, detail.questionnaire_id)
        if questionnaire is not None:
            session.delete(questionnaire)
            audit(
                session,
                actor=viewer.username,
                user_id=viewer.id,
                action="delete",
                entity="questionnaire",
                entity_id=detail.questionnaire_id,
                before={"code": detail.code},
            )
    session.commit()
    return detail.code, detail.version
