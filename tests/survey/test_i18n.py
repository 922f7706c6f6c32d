"""Every visible string has a Vietnamese translation with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from survey.i18n import LOCALE_DIR, gettext_for

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _extracted() -> set[str]:
    method_map = [("survey/**.py", "python"), ("templates/**.html", "jinja2")]
    found: set[str] = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(ROOT), method_map=method_map, keywords={"_": None, "N_": None}
    ):
        if isinstance(message, str) and message:
            found.add(message)
    return found


def test_every_extracted_message_has_a_vietnamese_translation() -> None:
    messages = _extracted()
    assert len(messages) > 40  # the extractor really ran over the code and templates
    translated: dict[str, str] = {}
    for po in sorted((LOCALE_DIR / "vi" / "LC_MESSAGES").glob("*.po")):  # messages.po and one per web area
        with po.open("rb") as fh:
            for entry in read_po(fh):
                if entry.id and entry.string:
                    earlier = translated.get(str(entry.id), entry.string)
                    assert earlier == entry.string, (
                        f"{entry.id!r}: '{earlier}' in one catalogue, '{entry.string}' in {po}"
                    )
                    translated[str(entry.id)] = str(entry.string)
    missing = sorted(m for m in messages if m not in translated)
    assert not missing, f"untranslated (run `make messages`, then translate): {missing}"
    for message in messages:
        assert set(PLACEHOLDER.findall(message)) == set(PLACEHOLDER.findall(translated[message])), message


def test_gettext_translates_and_formats() -> None:
    vi = gettext_for("vi")
    en = gettext_for("en")
    assert vi("Send my answers") == "Gửi câu trả lời"
    assert en("Send my answers") == "Send my answers"
    assert vi("Please choose at most {count} options.", count=3) == "Xin chọn tối đa 3 mục."
    assert gettext_for("fr")("Thank you") == "Thank you"  # an unknown locale falls back to the message id
