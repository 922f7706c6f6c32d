"""Pages in the staff layout (``templates/layouts/_staff.html``), shared by every staff area.

The layout is about the signed-in account: its navigation follows the principal's role, and its header
names the account, its role and its unit. :func:`staff_page` gives the template that principal (or
``None`` on the sign-in page), the role labels, the other language's link and the platform's time zone.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Request
from litestar.response import Template

from survey.auth.services import Principal
from survey.db.models import Role
from survey.i18n import N_
from survey.settings import Settings
from survey.web import page, request_locale

ROLE_LABELS = {
    Role.admin.value: N_("Administrator"),
    Role.officer.value: N_("Officer"),
    Role.leader.value: N_("Leader"),
}


def staff_page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    me: Principal | None,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Template:
    """A staff page: the signed-in account for the navigation, and a language link that keeps the query."""
    settings: Settings = request.app.state.settings
    locale = request_locale(request, settings)
    query = {k: v for k, v in request.query_params.items() if k != "lang"}
    query["lang"] = "en" if locale == "vi" else "vi"
    ctx: dict[str, Any] = {
        "me": me,
        "role_labels": ROLE_LABELS,
        "errors": [],
        "notice": None,
        "lang_href": f"{request.url.path}?{urlencode(query)}",
        "tz": ZoneInfo(settings.timezone),
        **(context or {}),
    }
    return page(request, template, settings=settings, context=ctx, status_code=status_code, locale=locale)
