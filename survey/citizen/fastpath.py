"""The receipt survey's two common answers, served in front of Litestar's router.

Nearly every request to the platform is a citizen opening ``/r/<code>`` or sending it back, and Litestar's
machinery for one request (the request object, parameter parsing, form parsing into a multi-dict and
again to close it, response objects, the middleware it passes) cost more CPU than everything the page
itself does. ``ReceiptFastPath`` sits inside ``Litestar.__call__`` (so the app's ``before_send`` hooks
still apply) and answers two cases itself:

- ``GET /r/<code>`` of a code that opens a survey: the fresh page;
- ``POST /r/<code>`` whose answers are complete and whose token checks: stored, then the thank-you
  redirect.

It uses the same functions as the handlers (``services.resolve_receipt``, ``SurveyPages.fresh``,
``submission.check_submission``, ``store_submission``), and anything else (a query string, another
content type, a bad code, answers to fix, a database error, a host not allowed) goes to Litestar
untouched, which then answers exactly as it would have: a sent body is handed on as it came. The rate
limit is counted once: its verdict travels in the scope to ``integrity.public_rate_limit``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.middleware.allowed_hosts import AllowedHostsMiddleware
from litestar.response.redirect import ASGIRedirectResponse

from survey.auth.sessions import STORE_NAME
from survey.citizen import services
from survey.citizen.submission import Refused, check_submission, store_submission
from survey.compression import accepts_gzip
from survey.i18n import Locale, coerce_locale
from survey.integrity import citizen as integrity
from survey.web import LANG_COOKIE, PreparedResponse

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ASGIApp, Receive, Scope, Send

    from survey.citizen.pages import SurveyPages
    from survey.db.direct import DirectDb
    from survey.settings import Settings

_PREFIX = "/r/"
_FORM = b"application/x-www-form-urlencoded"


class ReceiptFastPath:
    """ASGI app in front of ``inner`` (Litestar's exception handler and router) for the receipt survey."""

    def __init__(self, app: Litestar, inner: ASGIApp) -> None:
        self._app = app
        self._inner = inner
        settings: Settings = app.state.settings
        self._settings = settings
        limit = app.request_max_body_size
        self._max_body = limit if isinstance(limit, int) else 0
        hosts = AllowedHostsMiddleware(app=inner, config=AllowedHostsConfig(allowed_hosts=settings.allowed_hosts))
        self._hosts = hosts.allowed_hosts_regex  # None: every host
        self._thanks = {
            locale: ASGIRedirectResponse(path=f"/thanks?lang={locale}", status_code=303).encode_headers()
            for locale in ("vi", "en")
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        http: Any = scope
        if http["type"] == "http" and not http.get("query_string") and http["path"].startswith(_PREFIX):
            code = http["path"][len(_PREFIX) :]
            if code and "/" not in code and self._host_allowed(scope):
                if http["method"] == "GET":
                    if await self._page(scope, send, code):
                        return
                elif http["method"] == "POST":
                    handed_on = await self._submission(scope, receive, send, code)
                    if handed_on is None:
                        return
                    receive = handed_on
        await self._inner(scope, receive, send)

    # -- the two answers -------------------------------------------------------------------------------------

    async def _page(self, scope: Scope, send: Send, code: str) -> bool:
        """Send the fresh page; False (nothing sent) when Litestar should answer."""
        try:
            if await self._rate_limited(scope):
                return False
            db = await self._db()
            target = services.resolve_receipt(db, raw_code=code, today=self._settings.today())
            pages: SurveyPages = self._app.state.survey_pages
            locale = self._locale(scope)
            body, headers = pages.fresh(target, locale, secret=self._settings.secret_key, gzip=accepts_gzip(scope))
        except Exception:  # a bad code, a closed wave, the database: the handler answers (and words) it
            return False
        await PreparedResponse(body, headers).to_asgi_response(None, None)(scope, _no_body, send)  # type: ignore[arg-type]
        return True

    async def _submission(self, scope: Scope, receive: Receive, send: Send, code: str) -> Receive | None:
        """Store a complete submission and send the thank-you (None); otherwise the ``receive`` to hand on."""
        if _header(scope, b"content-type").partition(b";")[0].strip().lower() != _FORM:
            return receive
        messages: list[Any] = []
        handed_on = _replay(messages, receive)
        try:
            body = await _read_body(receive, self._max_body, messages)
            if body is None or await self._rate_limited(scope):
                return handed_on
            db = await self._db()
            target = services.resolve_receipt(db, raw_code=code, today=self._settings.today())
            checked = check_submission(self._settings, target, _form(body))
            if isinstance(checked, Refused):
                return handed_on
            await store_submission(db, checked)
            locale = self._locale(scope)
        except Exception:  # nothing stored, or stored once: the handler then thanks the same page again
            return handed_on
        await send({"type": "http.response.start", "status": 303, "headers": self._thanks[locale]})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return None

    # -- what the handlers get from Litestar -----------------------------------------------------------------

    async def _db(self) -> DirectDb:
        db: DirectDb = self._app.state.direct_db
        await db.ready()
        return db

    async def _rate_limited(self, scope: Scope) -> bool:
        """Count this request (``integrity.public_rate_limit`` then reads the verdict instead of counting again)."""
        client = scope.get("client")
        verdict = await integrity.count_public_request(
            self._settings, self._app.stores.get(STORE_NAME), client[0] if client else None
        )
        scope[integrity.RATE_VERDICT] = verdict  # type: ignore[literal-required]
        return verdict is not None

    def _host_allowed(self, scope: Scope) -> bool:
        if self._hosts is None:
            return True
        host = _header(scope, b"host").decode("latin-1")
        return bool(host.split(":")[0]) and self._hosts.fullmatch(host) is not None

    def _locale(self, scope: Scope) -> Locale:
        """As ``survey.web.request_locale`` with no ``?lang=``: the language cookie, else the default."""
        chosen = None
        for part in _header(scope, b"cookie").decode("latin-1").split(";"):
            name, _, value = part.strip().partition("=")
            if name == LANG_COOKIE:
                chosen = value.strip('"')
        return coerce_locale(chosen, self._settings.default_locale)


def _header(scope: Scope, name: bytes) -> bytes:
    """The first value of header ``name`` (ASGI names are lower-case), or b''."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


def _form(body: bytes) -> dict[str, Any]:
    """The form as the handlers get it from Litestar: one value a field, a list where a field repeats."""
    fields: dict[str, list[str]] = {}
    for key, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
        fields.setdefault(key, []).append(value)
    return {k: v if len(v) > 1 else v[0] for k, v in fields.items()}


async def _read_body(receive: Receive, limit: int, messages: list[Any]) -> bytes | None:
    """The request's body, its messages kept in ``messages``; None when it is over ``limit`` or cut off."""
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None
        size += len(message.get("body", b""))
        if limit and size > limit:
            return None
        if not message.get("more_body", False):
            return b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list[Any], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` again (those read by the time it is first called), then what comes."""
    given = 0

    async def replay() -> Any:
        nonlocal given
        if given < len(messages):
            given += 1
            return messages[given - 1]
        return await receive()

    return replay


async def _no_body() -> Any:
    return {"type": "http.request", "body": b"", "more_body": False}
