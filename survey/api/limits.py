"""What a JSON body may be before it is parsed: small, and not nested deeper than the API's schemas need.

The JSON decoder recurses once per level of nesting, so a body of 100,000 brackets would exhaust Python's
recursion limit inside the parser: a 500 for an anonymous caller. :func:`refuse_deep_json` runs before
any handler parses its body (``before_request`` of the app) and answers 400 instead. Its cost is one
``bytes.count`` for an ordinary body; only a body with more opening brackets than the limit is scanned
byte by byte, and the API's routes take at most ``API_MAX_BODY_BYTES``, so the scan stays short.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import ClientException

MAX_JSON_DEPTH = 32  # the API's requests are flat objects; 32 leaves room and stays far from the recursion limit
API_MAX_BODY_BYTES = 64 * 1024  # a request of the JSON API is a few hundred bytes
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


def nesting_depth(body: bytes, *, stop_above: int | None = None) -> int:
    """The deepest nesting of arrays and objects in ``body`` (brackets inside strings do not count).

    With ``stop_above``, the scan stops as soon as the depth exceeds it (and returns that depth).
    """
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    return deepest
        elif byte in _CLOSE:
            depth -= 1
    return deepest


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``body`` nests deeper than ``limit``; cheap unless it holds more than ``limit`` opening brackets."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    return nesting_depth(body, stop_above=limit) > limit


def _is_json(request: Request[Any, Any, Any]) -> bool:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


async def refuse_deep_json(request: Request[Any, Any, Any]) -> None:
    """``before_request`` of the app: a JSON body nested deeper than ``MAX_JSON_DEPTH`` is a 400, never parsed."""
    if request.method in ("GET", "HEAD", "OPTIONS", "DELETE") or not _is_json(request):
        return
    body = await request.body()  # bounded by the route's request_max_body_size; kept for the handler's parser
    if too_deep(body):
        raise ClientException(detail=f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.")
