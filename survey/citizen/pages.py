"""The survey page, rendered once per questionnaire version and language, then served for the cost of a join.

A fresh survey page differs between two openings in two places only: the line that names the unit (and field
or counter), and the signed form token, which the template puts at the very end of the form. So
``templates/citizen/survey.html`` is rendered once per (version, content hash, language) with markers in those
places, and its inline style is allowed by its hash instead of a per-request nonce. For gzip, the page up to
the token is compressed once per place (unit, field or counter) and kept; a request then adds the token as a
stored deflate block and the short compressed rest of the page: one valid gzip member (RFC 1951 §3.2.4,
RFC 1952), byte for byte the page the template renders, a few dozen bytes longer than compressing it whole.
Pages with errors or kept answers are rendered by the template per request.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment
from markupsafe import Markup, escape

from survey.citizen.forms import FieldError, ParsedAnswers, field_name
from survey.i18n import Locale
from survey.questionnaires.spec import Spec
from survey.web import page_context, security_headers

TEMPLATE = "citizen/survey.html"
# What the template is given where a request's own values go: unlike anything a page can contain.
_WHERE, _TOKEN = "\x00where\x00", "\x00token\x00"
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no time, unknown OS
_LEVEL = 6
_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)


def survey_context(
    *,
    spec: Spec,
    where: str,
    token: str,
    parsed: ParsedAnswers | None = None,
    notice: str | None = None,
) -> dict[str, Any]:
    """What ``citizen/survey.html`` is rendered with, besides what every page gets (``survey.web.page``)."""
    errors: list[FieldError] = list(parsed.errors) if parsed else []
    return {
        "spec": spec,
        "where": where,
        "token": token,
        "kept": parsed.kept if parsed else {},
        "errors": errors,
        "errors_by_field": {e.field: e for e in errors if e.field},
        "form_errors": [e for e in errors if e.field is None],
        "notice": notice,
        "field_name": field_name,
    }


def _stored_block(data: bytes) -> bytes:
    """A non-final stored deflate block (after a sync flush the stream is byte-aligned)."""
    n = len(data)
    return b"\x00" + struct.pack("<HH", n, n ^ 0xFFFF) + data


def gzip_whole(data: bytes) -> bytes:
    """``data`` as one gzip member, compressed as the pre-rendered page's parts are."""
    return zlib.compress(data, _LEVEL, wbits=16 + zlib.MAX_WBITS)


@dataclass(frozen=True, slots=True)
class _Head:
    """The page up to its token for one place: deflated (ending in a sync flush), its CRC-32 and length."""

    deflated: bytes
    crc: int
    size: int


class SurveyPage:
    """One version's page in one language (see the module docstring)."""

    def __init__(self, before_where: bytes, before_token: bytes, after_token: bytes, style_hashes: tuple[str, ...]):
        self.before_where = before_where
        self.before_token = before_token
        self.after_token = after_token
        self.tail_deflated = zlib.compress(after_token, _LEVEL, wbits=-zlib.MAX_WBITS)
        self.style_hashes = style_hashes
        self._heads: OrderedDict[str, _Head] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def render(cls, env: Environment, spec: Spec, locale: Locale) -> SurveyPage:
        marks = Markup(_WHERE), Markup(_TOKEN)  # noqa: S704 (constant markers, never user input)
        context = {**page_context(locale, None), **survey_context(spec=spec, where=marks[0], token=marks[1])}
        html = env.get_template(TEMPLATE).render(context)
        hashes = tuple(base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in _STYLE.findall(html))
        if html.count(_WHERE) != 1 or html.count(_TOKEN) != 1 or html.index(_WHERE) > html.index(_TOKEN):
            raise ValueError(f"{TEMPLATE} must show the place, then the token, exactly once each")
        before_where, rest = html.split(_WHERE)
        before_token, after_token = rest.split(_TOKEN)
        return cls(before_where.encode(), before_token.encode(), after_token.encode(), hashes)

    def _head(self, where: bytes, *, keep: int = 512) -> _Head:
        key = where.decode()
        with self._lock:
            found = self._heads.get(key)
            if found is not None:
                self._heads.move_to_end(key)
                return found
        data = self.before_where + where + self.before_token
        co = zlib.compressobj(_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        head = _Head(co.compress(data) + co.flush(zlib.Z_SYNC_FLUSH), zlib.crc32(data), len(data))
        with self._lock:
            self._heads[key] = head
            while len(self._heads) > keep:
                self._heads.popitem(last=False)
        return head

    def body(self, where: str, token: str, *, gzip: bool) -> bytes:
        """The page with this request's place and token; gzip-encoded when ``gzip``."""
        where_b, token_b = str(escape(where)).encode(), str(escape(token)).encode()
        if not gzip:
            return b"".join((self.before_where, where_b, self.before_token, token_b, self.after_token))
        head = self._head(where_b)
        crc = zlib.crc32(self.after_token, zlib.crc32(token_b, head.crc))
        size = head.size + len(token_b) + len(self.after_token)
        trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
        return b"".join((_GZIP_HEADER, head.deflated, _stored_block(token_b), self.tail_deflated, trailer))

    def headers(self) -> dict[str, str]:
        return security_headers(style_hashes=self.style_hashes)


class SurveyPages:
    """The app's pages, built on first use (one template rendering per version and language)."""

    def __init__(self, env: Environment, *, limit: int = 64) -> None:
        self._env = env
        self._pages: dict[tuple[int, str, str], SurveyPage] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def get(self, version_id: int, version_hash: str, spec: Spec, locale: Locale) -> SurveyPage:
        key = (version_id, version_hash, locale)
        found = self._pages.get(key)
        if found is None:
            found = SurveyPage.render(self._env, spec, locale)
            with self._lock:
                if len(self._pages) >= self._limit:
                    self._pages.clear()
                self._pages[key] = found
        return found
