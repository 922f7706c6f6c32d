"""What every HTML page shares: the locale, security headers with a CSP nonce, and rendering."""

from __future__ import annotations

import secrets
from typing import Any

from litestar import Request
from litestar.datastructures import Cookie
from litestar.response import Template

from survey.i18n import Locale, coerce_locale, template_context
from survey.settings import Settings

LANG_COOKIE = "sipas_lang"
# Route option of the handlers that gzip their own answers (the pre-rendered survey page): Litestar's
# compression (``create_app``) leaves their answers alone.
PRECOMPRESSED_OPT = "precompressed"
PRECOMPRESSED = {PRECOMPRESSED_OPT: True}


def accepts_gzip(request: Request[Any, Any, Any]) -> bool:
    """Whether the request says it takes gzip (as Litestar's compression decides it)."""
    return "gzip" in request.headers.get("accept-encoding", "")


def request_locale(request: Request[Any, Any, Any], settings: Settings) -> Locale:
    """``?lang=`` wins, then the language cookie, then the platform default (Vietnamese)."""
    query = request.query_params.get("lang")
    if query in ("vi", "en"):
        return coerce_locale(query)
    return coerce_locale(request.cookies.get(LANG_COOKIE), settings.default_locale)


def security_headers(nonce: str | None = None, *, style_hashes: tuple[str, ...] = ()) -> dict[str, str]:
    """The headers every page carries. Its inline style is allowed by ``nonce`` (a page rendered per request)
    or by the SHA-256 of each inline style (``style_hashes``, base64: a page rendered once and kept)."""
    styles = " ".join(([f"'nonce-{nonce}'"] if nonce else []) + [f"'sha256-{h}'" for h in style_hashes])
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'self' {styles}; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


def new_nonce() -> str:
    return secrets.token_urlsafe(12)


def page_context(locale: Locale, nonce: str | None) -> dict[str, Any]:
    """What every page's template is given: translation, the CSP nonce, the other language."""
    return {**template_context(locale), "csp_nonce": nonce, "other_locale": "en" if locale == "vi" else "vi"}


def lang_cookies(request: Request[Any, Any, Any], locale: Locale) -> list[Cookie]:
    """The language cookie to set when ``?lang=`` chose a language the cookie does not hold yet."""
    if request.query_params.get("lang") in ("vi", "en") and request.cookies.get(LANG_COOKIE) != locale:
        return [Cookie(key=LANG_COOKIE, value=locale, max_age=365 * 24 * 3600, httponly=True, samesite="lax")]
    return []


def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    settings: Settings,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    locale: Locale | None = None,
) -> Template:
    """Render ``template`` in the request's language with the security headers every page carries."""
    locale = locale or request_locale(request, settings)
    nonce = new_nonce()
    ctx: dict[str, Any] = {**page_context(locale, nonce), "request_path": request.url.path, **(context or {})}
    return Template(
        template_name=template,
        context=ctx,
        status_code=status_code,
        headers=security_headers(nonce),
        cookies=lang_cookies(request, locale),
    )
