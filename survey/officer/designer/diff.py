"""What changed between two questionnaire versions: sections and items added, removed, relabelled, retyped.

Works on raw definitions (a draft may not validate yet), so every lookup is defensive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from survey.i18n import N_


@dataclass(frozen=True, slots=True)
class Change:
    """One difference; ``message`` is an English message id with ``params``."""

    kind: str  # added, removed, changed
    message: str
    params: dict[str, Any] = field(default_factory=dict)


def _label(value: Any) -> tuple[str, str]:
    value = value if isinstance(value, dict) else {}
    return (str(value.get("vi") or ""), str(value.get("en") or ""))


def _show(value: Any) -> str:
    vi, en = _label(value)
    return f"{vi} / {en}" if en else vi


def _items(definition: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for section in definition.get("sections") or []:
        for item in section.get("items") or []:
            out.setdefault(str(item.get("id") or ""), (str(section.get("id") or ""), item))
    return out


def _options(definition: dict[str, Any], item: dict[str, Any]) -> dict[str, tuple[str, str]]:
    options = item.get("options")
    if item.get("type") == "scale":
        options = ((definition.get("scales") or {}).get(item.get("scale")) or {}).get("options")
    return {str(o.get("value")): _label(o.get("label")) for o in options or []}


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """The changes that turn ``old`` into ``new``, in the order of ``new``'s sections and items."""
    changes: list[Change] = []
    if _label(old.get("title")) != _label(new.get("title")):
        changes.append(
            Change(
                "changed",
                N_("Title: “{old}” → “{new}”"),
                {"old": _show(old.get("title")), "new": _show(new.get("title"))},
            )
        )
    old_sections = {str(s.get("id")): s for s in old.get("sections") or []}
    new_sections = {str(s.get("id")): s for s in new.get("sections") or []}
    for sid, section in new_sections.items():
        before = old_sections.get(sid)
        if before is None:
            changes.append(
                Change("added", N_("Section “{id}” added: {label}"), {"id": sid, "label": _show(section.get("title"))})
            )
            continue
        if _label(before.get("title")) != _label(section.get("title")):
            changes.append(
                Change(
                    "changed",
                    N_("Section “{id}” relabelled: “{old}” → “{new}”"),
                    {"id": sid, "old": _show(before.get("title")), "new": _show(section.get("title"))},
                )
            )
        if bool(before.get("element")) != bool(section.get("element")):
            message = (
                N_("Section “{id}” is now an element")
                if section.get("element")
                else N_("Section “{id}” is no longer an element")
            )
            changes.append(Change("changed", message, {"id": sid}))
    for sid, section in old_sections.items():
        if sid not in new_sections:
            changes.append(
                Change(
                    "removed", N_("Section “{id}” removed: {label}"), {"id": sid, "label": _show(section.get("title"))}
                )
            )
    if [s for s in old_sections if s in new_sections] != [s for s in new_sections if s in old_sections]:
        changes.append(Change("changed", N_("Sections are in a new order")))
    old_items, new_items = _items(old), _items(new)
    for iid, (sid, item) in new_items.items():
        if iid not in old_items:
            changes.append(
                Change(
                    "added",
                    N_("Question “{id}” added to section “{section}”: {label}"),
                    {"id": iid, "section": sid, "label": _show(item.get("text"))},
                )
            )
            continue
        old_sid, before = old_items[iid]
        changes.extend(_item_changes(iid, old, before, new, item))
        if old_sid != sid:
            changes.append(
                Change(
                    "changed",
                    N_("Question “{id}” moved from section “{old}” to “{new}”"),
                    {"id": iid, "old": old_sid, "new": sid},
                )
            )
    for iid, (sid, item) in old_items.items():
        if iid not in new_items:
            changes.append(
                Change(
                    "removed",
                    N_("Question “{id}” removed from section “{section}”: {label}"),
                    {"id": iid, "section": sid, "label": _show(item.get("text"))},
                )
            )
    return changes


def _item_changes(
    iid: str, old_def: dict[str, Any], old: dict[str, Any], new_def: dict[str, Any], new: dict[str, Any]
) -> list[Change]:
    out = []
    if _label(old.get("text")) != _label(new.get("text")):
        out.append(
            Change(
                "changed",
                N_("Question “{id}” relabelled: “{old}” → “{new}”"),
                {"id": iid, "old": _show(old.get("text")), "new": _show(new.get("text"))},
            )
        )
    if old.get("type") != new.get("type"):
        out.append(
            Change(
                "changed",
                N_("Question “{id}” retyped: {old} → {new}"),
                {"id": iid, "old": old.get("type"), "new": new.get("type")},
            )
        )
    if old.get("role") != new.get("role"):
        out.append(
            Change(
                "changed",
                N_("Question “{id}”: role {old} → {new}"),
                {"id": iid, "old": old.get("role"), "new": new.get("role")},
            )
        )
    if bool(old.get("required")) != bool(new.get("required")):
        message = (
            N_("Question “{id}” is now required") if new.get("required") else N_("Question “{id}” is now optional")
        )
        out.append(Change("changed", message, {"id": iid}))
    if bool(old.get("sensitive")) != bool(new.get("sensitive")):
        now = N_("Question “{id}” is now sensitive")
        message = now if new.get("sensitive") else N_("Question “{id}” is no longer sensitive")
        out.append(Change("changed", message, {"id": iid}))
    before, after = _options(old_def, old), _options(new_def, new)
    if before != after:
        added = [v for v in after if v not in before]
        removed = [v for v in before if v not in after]
        relabelled = [v for v in after if v in before and before[v] != after[v]]
        reordered = [v for v in after if v in before] != [v for v in before if v in after]
        parts = {
            "added": ", ".join(added) or "–",
            "removed": ", ".join(removed) or "–",
            "relabelled": ", ".join(relabelled) or "–",
        }
        message = N_("Question “{id}” options changed: added {added}; removed {removed}; relabelled {relabelled}")
        if reordered and not (added or removed or relabelled):
            message = N_("Question “{id}” options are in a new order")
        out.append(Change("changed", message, {"id": iid, **parts}))
    return out
