"""The survey page, rendered once per questionnaire version and language, then served for the cost of a join.

A survey page differs between two openings in three places only: the CSP nonce, the line that names the
unit (and field or counter), and the signed form token. So ``templates/citizen/survey.html`` is rendered
once per (version, content hash, language) with markers in those places; the text between them is kept
both as bytes and deflated (each part on its own, ended with a sync flush, so parts can follow each
other). A request then costs one nonce, one token, one CRC and a join: the three values go in as
stored (uncompressed) deflate blocks, and the whole is one valid gzip member (RFC 1951 §3.2.4,
RFC 1952), byte for byte the same page the template would render, only sent compressed without
compressing it again. Pages with errors or kept answers are rendered by the template as before.
"""

from __future__ import annotations

import struct
import threading
import zlib
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment
from markupsafe import Markup, escape

from survey import codes
from survey.citizen.forms import FieldError, ParsedAnswers, field_name
from survey.citizen.services import SurveyTarget
from survey.i18n import Locale
from survey.questionnaire import Spec
from survey.web import new_nonce, page_context, raw_security_headers

TEMPLATE = "citizen/survey.html"
# What the template is given where a request's own values go: unlike anything a page can contain.
_MARKERS = ("\x00nonce\x00", "\x00where\x00", "\x00token\x00")
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no time, unknown OS
_LEVEL = 6
_VARY = (b"vary", b"Accept-Encoding")
_GZIPPED = (b"content-encoding", b"gzip")


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


def _crc_shift(part: bytes) -> tuple[tuple[int, ...], ...]:
    """Tables that continue a CRC-32 over ``part`` without reading it again.

    ``zlib.crc32(part, c) == S(c) ^ zlib.crc32(part)``, where ``S`` is linear over GF(2) and depends only on
    ``len(part)``; ``S`` of a 32-bit value is the XOR of ``S`` of its four bytes, looked up here.
    """
    base = zlib.crc32(part)
    bit = [zlib.crc32(part, 1 << i) ^ base for i in range(32)]
    tables = []
    for k in range(4):
        table = [0] * 256
        for v in range(1, 256):
            low = v & -v  # v's lowest set bit
            table[v] = table[v ^ low] ^ bit[8 * k + low.bit_length() - 1]
        tables.append(tuple(table))
    return tuple(tables)


def _crc_continue(tables: tuple[tuple[int, ...], ...], part_crc: int, crc: int) -> int:
    """``zlib.crc32(part, crc)`` from ``part``'s tables and ``zlib.crc32(part)``."""
    t0, t1, t2, t3 = tables
    return t0[crc & 0xFF] ^ t1[(crc >> 8) & 0xFF] ^ t2[(crc >> 16) & 0xFF] ^ t3[crc >> 24] ^ part_crc


def _deflate(data: bytes, *, final: bool) -> bytes:
    co = zlib.compressobj(_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return co.compress(data) + co.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


@dataclass(frozen=True, slots=True)
class SurveyPage:
    """One version's page in one language: the parts between the request's values, plain and deflated."""

    parts: tuple[bytes, ...]  # len(_MARKERS) + 1 of them
    deflated: tuple[bytes, ...]
    crcs: tuple[int, ...]  # zlib.crc32 of each part
    shifts: tuple[tuple[tuple[int, ...], ...], ...]  # _crc_shift of each part

    @classmethod
    def render(cls, env: Environment, spec: Spec, locale: Locale) -> SurveyPage:
        marks = [Markup(m) for m in _MARKERS]  # noqa: S704 (constant markers, never user input)
        context = {**page_context(locale, marks[0]), **survey_context(spec=spec, where=marks[1], token=marks[2])}
        html = env.get_template(TEMPLATE).render(context)
        parts: list[str] = []
        for marker in _MARKERS:
            before, found, html = html.partition(marker)
            if not found or marker in html:
                raise ValueError(f"{TEMPLATE} must show {marker.strip(chr(0))} exactly once")
            parts.append(before)
        parts.append(html)
        raw = tuple(p.encode() for p in parts)
        return cls(
            raw,
            tuple(_deflate(p, final=i == len(raw) - 1) for i, p in enumerate(raw)),
            tuple(zlib.crc32(p) for p in raw),
            tuple(_crc_shift(p) for p in raw),
        )

    def body(self, nonce: str, where: str, token: str, *, gzip: bool) -> bytes:
        """The page with this request's values; gzip-encoded when ``gzip``."""
        values = (nonce.encode(), str(escape(where)).encode(), str(escape(token)).encode())
        if not gzip:
            return b"".join(p for pair in zip(self.parts, (*values, b""), strict=True) for p in pair)
        out = [_GZIP_HEADER]
        crc, size = 0, 0
        parts = zip(self.parts, self.deflated, self.crcs, self.shifts, (*values, None), strict=True)
        for part, packed, part_crc, shift, value in parts:
            out.append(packed)
            crc, size = _crc_continue(shift, part_crc, crc), size + len(part)
            if value is not None:
                out.append(_stored_block(value))
                crc, size = zlib.crc32(value, crc), size + len(value)
        out.append(struct.pack("<II", crc, size & 0xFFFFFFFF))
        return b"".join(out)


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

    def fresh(
        self, target: SurveyTarget, locale: Locale, *, secret: str, gzip: bool
    ) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """A fresh survey page for ``target``, and its headers (``survey.web.PreparedResponse`` sends them)."""
        nonce = new_nonce()
        token = codes.sign_form_token(secret, target.form_target)
        page = self.get(target.version_id, target.version_hash, target.spec, locale)
        body = page.body(nonce, target.where(locale), token, gzip=gzip)
        headers = raw_security_headers(nonce)
        headers.append(_VARY)
        if gzip:
            headers.append(_GZIPPED)
        return body, headers
