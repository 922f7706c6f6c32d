"""CSRF protection for every form but the citizen's: Litestar's double-submit cookie with an HMAC'd token.

Staff forms carry the token in a hidden ``_csrf_token`` field (``templates/partials/_csrf.html``).
Citizen forms (``/r/...``, ``/c/...``) carry their own signed, single-purpose tokens and must work
for people who arrive from a QR code with no cookie; the JSON API authenticates with bearer keys, not
cookies. Those paths, and the ones that never take a form, are left out.
"""

from __future__ import annotations

from litestar.config.csrf import CSRFConfig

from survey.settings import Settings

COOKIE_NAME = "sipas_csrf"
FIELD_NAME = "_csrf_token"  # fixed by Litestar's middleware
EXCLUDED = ["^/r/", "^/c/", "^/api/", "^/static/", "^/healthz", "^/schema"]


def csrf_config(settings: Settings) -> CSRFConfig:
    return CSRFConfig(
        secret=settings.secret_key,
        cookie_name=settings.cookie_name(COOKIE_NAME),  # __Host-sipas_csrf in production
        cookie_secure=settings.is_production,
        cookie_path="/",
        cookie_httponly=True,
        cookie_samesite="lax",
        header_name="x-csrftoken",
        exclude=EXCLUDED,
    )
