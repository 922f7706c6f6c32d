"""QR images (SVG or PNG) with the ``qrcode`` library."""

from __future__ import annotations

import io
from pathlib import Path

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M


def qr_svg(data: str) -> bytes:
    """An SVG path image: crisp at any print size, a few kilobytes."""
    img = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, error_correction=ERROR_CORRECT_M, border=4)
    buf = io.BytesIO()
    img.save(buf)
    return buf.getvalue()


def qr_png(data: str, *, box_size: int = 10) -> bytes:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=4)
    qr.add_data(data)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image().save(buf)
    return buf.getvalue()


def write_qr(data: str, path: Path, fmt: str) -> None:
    if fmt not in ("svg", "png"):
        raise ValueError(f"unknown QR format '{fmt}' (svg or png)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(qr_svg(data) if fmt == "svg" else qr_png(data))
