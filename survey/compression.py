"""Gzip for every answer that is worth it and not compressed already: ASGI middleware.

Instead of Litestar's ``CompressionConfig``, because that one compresses an answer again when it is
already gzip-encoded (the survey page is pre-compressed, ``survey.citizen.pages``) and sets up a
compressor for every request before it knows whether anything will be compressed. Here nothing is
set up until the answer's first body arrives: a whole body is compressed in one call, a streamed
one (exports) chunk by chunk.
"""

from __future__ import annotations

import zlib
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

MINIMUM_SIZE = 500
LEVEL = 6
_SKIP_TYPES = (b"image/png", b"image/jpeg", b"application/zip", b"application/vnd.openxmlformats")


def accepts_gzip(scope: Scope) -> bool:
    """Whether the request says it takes gzip (ASGI header names are lower-case)."""
    for name, value in scope["headers"]:
        if name == b"accept-encoding":
            return b"gzip" in value
    return False


def _compressible(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-encoding":
            return False
        if name == b"content-type" and value.startswith(_SKIP_TYPES):
            return False
    return True


def gzip_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not accepts_gzip(scope):
            await app(scope, receive, send)
            return
        start: dict[str, Any] | None = None
        compressor: Any = None

        async def send_compressed(message: Message) -> None:
            nonlocal start, compressor
            if message["type"] == "http.response.start":
                start = dict(message)
                return
            if message["type"] != "http.response.body" or compressor is False:
                await send(message)
                return
            body: bytes = message.get("body", b"")
            more = message.get("more_body", False)
            if compressor is not None:  # the next chunk of a streamed answer
                chunk = compressor.compress(body)
                chunk += compressor.flush(zlib.Z_SYNC_FLUSH if more else zlib.Z_FINISH)
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
                return
            assert start is not None
            headers = list(start.get("headers", []))
            if (not more and len(body) < MINIMUM_SIZE) or not _compressible(headers):
                compressor = False  # this answer passes through as it is
                await send(start)  # type: ignore[arg-type]
                await send(message)
                return
            mutable = MutableScopeHeaders({"headers": headers})
            mutable["Content-Encoding"] = "gzip"
            mutable.extend_header_value("Vary", "Accept-Encoding")
            if more:
                del mutable["Content-Length"]
                compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
                chunk = compressor.compress(body) + compressor.flush(zlib.Z_SYNC_FLUSH)
            else:
                compressor = False
                chunk = zlib.compress(body, LEVEL, wbits=16 + zlib.MAX_WBITS)
                mutable["Content-Length"] = str(len(chunk))
            await send({**start, "headers": mutable.headers})  # type: ignore[arg-type]
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

        await app(scope, receive, send_compressed)

    return middleware
