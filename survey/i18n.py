"""Vietnamese first, English second: gettext catalogues (Babel) for every visible string.

Message ids are English. ``survey/locales/<locale>/LC_MESSAGES/messages.po`` holds the catalogues;
they are compiled in memory when first used, so there is no build step. ``babel.cfg`` drives
extraction (``make messages``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Literal

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

Locale = Literal["vi", "en"]
LOCALES: tuple[Locale, ...] = ("vi", "en")
LOCALE_DIR = Path(__file__).resolve().parent / "locales"


def _compile(po_path: Path, locale: str) -> Translations:
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


@cache
def translations(locale: str) -> NullTranslations:
    """``messages.po`` merged with any other ``*.po`` of the locale (one per web area: officer, leader...)."""
    folder = LOCALE_DIR / locale / "LC_MESSAGES"
    main = folder / "messages.po"
    if not main.exists():
        return NullTranslations()
    merged = _compile(main, locale)
    for extra in sorted(folder.glob("*.po")):
        if extra.name != "messages.po":
            merged.merge(_compile(extra, locale))
    return merged


def coerce_locale(value: Any, default: Locale = "vi") -> Locale:
    if value == "en":
        return "en"
    if value == "vi":
        return "vi"
    return default


def gettext_for(locale: str) -> Callable[..., str]:
    """``_("Hello {name}", name=...)``: translate, then format with keyword arguments if given."""
    t = translations(locale)

    def _(message: str, **params: Any) -> str:
        text = t.gettext(message)
        return text.format(**params) if params else text

    return _


def template_context(locale: str) -> dict[str, Any]:
    """What templates need to translate: ``_``, ``gettext``/``ngettext`` for ``{% trans %}``, the locale."""
    t = translations(locale)
    return {
        "_": gettext_for(locale),
        "gettext": t.gettext,
        "ngettext": t.ngettext,
        "locale": locale,
    }


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return message


def report_missing(pot_path: str) -> None:
    """Print, per locale, the extracted message ids that none of its catalogues translates (``make messages``)."""
    with open(pot_path, "rb") as fh:
        template = read_po(fh)
    for locale in LOCALES:
        known: set[str] = set()
        for po in (LOCALE_DIR / locale / "LC_MESSAGES").glob("*.po"):
            with po.open("rb") as fh:
                # English ids read as English: an empty English translation is fine, a missing entry is not
                known.update(str(m.id) for m in read_po(fh) if m.id and (m.string or locale == "en"))
        missing = [str(m.id) for m in template if m.id and isinstance(m.id, str) and m.id not in known]
        print(f"{locale}: {len(missing)} untranslated")
        for message in missing:
            print(f"  {message!r}")
