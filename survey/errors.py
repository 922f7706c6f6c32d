"""One error hierarchy, mapped to pages and problem details in one place (``survey.app``)."""

from __future__ import annotations


class SipasError(Exception):
    """Base of every error the platform explains to a person. ``status_code`` picks the page."""

    status_code = 400
    template = "errors/400.html"

    def __init__(self, message: str = "", *, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.title = title


class UnauthorizedError(SipasError):
    """No valid credentials (an API key missing, unknown or revoked; not logged in)."""

    status_code = 401
    template = "errors/400.html"


class ForbiddenError(SipasError):
    """Valid credentials, but not for this: another unit's subtree, or a role or scope that does not allow it."""

    status_code = 403
    template = "errors/400.html"


class NotFoundError(SipasError):
    status_code = 404
    template = "errors/404.html"


class GoneError(SipasError):
    status_code = 410
    template = "errors/410.html"


class ConflictError(SipasError):
    status_code = 409
    template = "errors/409.html"


class ServiceUnavailableError(SipasError):
    status_code = 503
    template = "errors/503.html"


class QuestionnaireError(SipasError):
    """A questionnaire file that does not validate: names the file, the item and the problem."""

    def __init__(self, source: str, item: str | None, problem: str) -> None:
        where = f"{source}: item '{item}'" if item else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.item = item
        self.problem = problem


class SeedDataError(SipasError):
    """A seed or import file that does not validate."""
