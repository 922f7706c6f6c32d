"""What every HTML page shares: the locale, security headers with a CSP nonce, and rendering."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from litestar import Request, Response
from litestar.background_tasks import BackgroundTask, BackgroundTasks
from litestar.datastructures import Cookie
from litestar.response import Template
from litestar.response.base import ASGIResponse
from litestar.types import Receive, Scope, Send

from survey.i18n import Locale, coerce_locale, template_context
from survey.settings import Settings

LANG_COOKIE = "sipas_lang"


def request_locale(request: Request[Any, Any, Any], settings: Settings) -> Locale:
    """``?lang=`` wins, then the language cookie, then the platform default (Vietnamese)."""
    query = request.query_params.get("lang")
    if query in ("vi", "en"):
        return coerce_locale(query)
    return coerce_locale(request.cookies.get(LANG_COOKIE), settings.default_locale)


def security_headers(nonce: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


_NONCE_MARK = "\x00"
_RAW_SECURITY = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in security_headers(_NONCE_MARK).items()]


def raw_security_headers(nonce: str) -> list[tuple[bytes, bytes]]:
    """``security_headers(nonce)`` as the ASGI header list (lower-case names, bytes)."""
    mark, value = _NONCE_MARK.encode(), nonce.encode("latin-1")
    return [(k, v.replace(mark, value)) if mark in v else (k, v) for k, v in _RAW_SECURITY]


def new_nonce() -> str:
    return secrets.token_urlsafe(12)


def page_context(locale: Locale, nonce: str) -> dict[str, Any]:
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


class PreparedResponse(Response[bytes]):
    """An answer whose body and headers are final bytes, sent as they are.

    Litestar's own answer objects keep their headers in a structure that decodes and re-encodes every
    header at each step; for the survey page that bookkeeping cost more than its database lookup.
    Cookies added to ``cookies`` after it is made are sent too, and headers or cookies the route
    configures are added after the answer's own."""

    __slots__ = ("raw_headers",)

    def __init__(
        self,
        body: bytes,
        raw_headers: list[tuple[bytes, bytes]],
        *,
        media_type: str = "text/html; charset=utf-8",
        cookies: list[Cookie] | None = None,
        status_code: int = 200,
    ) -> None:
        super().__init__(body, status_code=status_code, cookies=cookies)
        self.raw_headers = [
            (b"content-type", media_type.encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
            *raw_headers,
        ]

    def to_asgi_response(
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: Any = None,
        status_code: int | None = None,
        type_encoders: Mapping[Any, Any] | None = None,
    ) -> ASGIResponse:
        raw = self.raw_headers
        if headers:
            present = {name for name, _ in raw}
            raw = raw + [
                (k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in headers.items()
                if k.lower().encode("latin-1") not in present
            ]
        all_cookies = [*self.cookies, *(cookies or ())]
        if all_cookies:
            raw = raw + [c.to_encoded_header() for c in all_cookies if not c.documentation_only]
        body: bytes = self.content
        return _PreparedASGIResponse(self.status_code or 200, raw, b"" if is_head_response else body, background)


class _PreparedASGIResponse(ASGIResponse):
    """Sends a ``PreparedResponse``: the start event with its header list, then the body."""

    __slots__ = ("_raw",)

    def __init__(  # not calling ASGIResponse.__init__: none of its header handling is needed
        self,
        status_code: int,
        raw_headers: list[tuple[bytes, bytes]],
        body: bytes,
        background: BackgroundTask | BackgroundTasks | None,
    ) -> None:
        self.status_code = status_code
        self._raw = raw_headers
        self.body = body
        self.background = background

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self._raw})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})
        if self.background is not None:
            await self.background()
