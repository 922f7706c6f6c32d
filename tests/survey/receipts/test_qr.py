"""QR images, decoded for real with zbarimg, and the ``sipas qr`` / ``sipas questionnaire`` commands end to end."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
import yaml
from click.testing import CliRunner, Result
from litestar.testing import TestClient
from PIL import Image
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from seed_data import QUESTIONNAIRE_DIR
from survey.app import create_app
from survey.cli import main
from survey.db.engine import make_engine, migrate
from survey.db.models import AuditLog, ReceiptCode, ServicePoint, Unit, Wave
from survey.receipts.qr import qr_png, qr_svg, write_qr
from tests.conftest import CHROMIUM_FLAGS, cli_settings, form_token, make_settings, unavailable
from tests.factories import World, build_world

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"
BASE_URL = "http://testserver"
HEADLESS_FLAGS = ["--headless", *CHROMIUM_FLAGS]
URLS = [
    "http://testserver/r/7KQ2M9XD4HTRZW3P",
    "https://sipas.example.gov.vn/c/AbC-dEf_123456",
    "https://hai-long.example.gov.vn/r/0000000000000000?lang=en&src=poster",
]


# --- decoding helpers -------------------------------------------------------------------------------------


def zbarimg() -> str:
    path = shutil.which("zbarimg")
    if path is None:
        unavailable("zbarimg not installed (apt-get install zbar-tools)")
    assert path is not None
    return path


def decode(image: Path) -> list[str]:
    """Every symbol zbarimg finds in ``image`` (exit code 4 means none was found)."""
    proc = subprocess.run(
        [zbarimg(), "--quiet", "--raw", str(image)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode in (0, 4), proc.stderr
    return proc.stdout.splitlines()


def render_svg(svg: Path, out_dir: Path) -> Path:
    """A PNG screenshot of ``svg`` drawn 600 px wide by headless Chromium (zbarimg cannot read SVG)."""
    chromium = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if chromium is None:
        unavailable("chromium not installed (apt-get install chromium), needed to render the SVG for zbarimg")
    assert chromium is not None
    page = out_dir / "page.html"
    page.write_text(
        '<!doctype html><html><body style="margin:0;background:#fff">'
        f'<img src="{svg.name}" style="display:block;margin:20px;width:560px;height:560px">'
        "</body></html>",
        encoding="utf-8",
    )
    shot = out_dir / "shot.png"
    proc = subprocess.run(
        [
            chromium,
            *HEADLESS_FLAGS,
            f"--user-data-dir={out_dir / 'chromium-profile'}",
            "--window-size=600,600",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and shot.exists(), f"chromium could not render the SVG:\n{proc.stderr[-2000:]}"
    return shot


def parse_svg(svg: bytes) -> ElementTree.Element:
    return ElementTree.fromstring(svg)  # noqa: S314 - our own output, not untrusted input


# --- images -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", URLS)
def test_qr_svg_is_well_formed_svg_with_a_path(url: str) -> None:
    svg = qr_svg(url)
    root = parse_svg(svg)
    assert root.tag.endswith("svg")
    path = root.find(f"{SVG_NS}path")
    assert path is not None
    assert re.match(r"^M\d", path.get("d", "")), "the path has no drawing commands"
    view_box = [float(v) for v in root.get("viewBox", "").split()]
    assert len(view_box) == 4 and view_box[2] == view_box[3] > 0  # square
    assert qr_svg(url) == svg  # deterministic: the same URL gives the same poster


@pytest.mark.parametrize("url", URLS)
def test_qr_png_is_a_square_png(url: str) -> None:
    png = qr_png(url)
    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG"
        width, height = img.size
    assert width == height
    modules = width // 10 - 2 * 4  # box size 10, border 4
    assert width % 10 == 0 and modules >= 21 and (modules - 17) % 4 == 0  # a real QR version's size
    with Image.open(io.BytesIO(qr_png(url, box_size=4))) as small:
        assert small.size == (modules * 4 + 32, modules * 4 + 32)


def test_write_qr_writes_both_formats_and_refuses_others(tmp_path: Path) -> None:
    url = URLS[0]
    write_qr(url, tmp_path / "deep" / "a.svg", "svg")
    write_qr(url, tmp_path / "deep" / "a.png", "png")
    assert (tmp_path / "deep" / "a.svg").read_bytes() == qr_svg(url)
    assert (tmp_path / "deep" / "a.png").read_bytes().startswith(PNG_SIGNATURE)
    for fmt in ["jpg", "SVG", "", "pdf"]:
        target = tmp_path / "other" / f"a.{fmt or 'x'}"
        with pytest.raises(ValueError, match="unknown QR format"):
            write_qr(url, target, fmt)
        assert not target.exists()


@pytest.mark.parametrize("url", URLS)
def test_png_decodes_to_the_exact_url(url: str, tmp_path: Path) -> None:
    image = tmp_path / "code.png"
    image.write_bytes(qr_png(url))
    assert decode(image) == [url]


@pytest.mark.browser
@pytest.mark.parametrize("url", URLS[:2])
def test_svg_rendered_by_chromium_decodes_to_the_exact_url(url: str, tmp_path: Path) -> None:
    svg = tmp_path / "code.svg"
    svg.write_bytes(qr_svg(url))
    zbarimg()  # before starting Chromium
    assert decode(render_svg(svg, tmp_path)) == [url]


# --- the sipas command, against a real SQLite file --------------------------------------------------------


@dataclass(frozen=True)
class CliDb:
    url: str
    engine: Engine
    world: World
    wave_code: str
    closed_wave_code: str
    unit_code: str
    other_unit_code: str
    service_point_code: str


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliDb]:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'sipas.db'}"
    migrate(url)
    engine = make_engine(url)
    world = build_world(engine)
    with Session(engine) as s:
        wave_code = s.scalars(select(col(Wave.code)).where(col(Wave.id) == world.open_wave_id)).one()
        closed_wave_code = s.scalars(select(col(Wave.code)).where(col(Wave.id) == world.closed_wave_id)).one()
        unit_code = s.scalars(select(col(Unit.code)).where(col(Unit.id) == world.unit_id)).one()
        other_unit_code = s.scalars(select(col(Unit.code)).where(col(Unit.id) == world.other_unit_id)).one()
        point_code = s.scalars(
            select(col(ServicePoint.code)).where(col(ServicePoint.id) == world.service_point_id)
        ).one()
    yield CliDb(url, engine, world, wave_code, closed_wave_code, unit_code, other_unit_code, point_code)
    engine.dispose()


@pytest.fixture()
def cli(cli_db: CliDb, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[CliDb]:
    """The process environment the command reads its settings from, with the settings cache cleared."""
    with cli_settings(monkeypatch, tmp_path, cli_db.url):
        yield cli_db


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _receipt_count(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(ReceiptCode)) or 0)


def _audit_rows(engine: Engine) -> list[AuditLog]:
    with Session(engine) as s:
        stmt = select(AuditLog).where(col(AuditLog.action) == "issue_codes").order_by(col(AuditLog.id))
        return list(s.scalars(stmt).all())


def _issue(cli: CliDb, out: Path, *, n: int = 5, fmt: str = "png") -> list[dict[str, str]]:
    result = run("qr", "receipts", "--wave", cli.wave_code, "--unit", cli.unit_code, "-n", str(n), "--format", fmt)
    assert result.exit_code != 0 and "-o" in result.output  # the output folder is required
    result = run(
        "qr",
        "receipts",
        "--wave",
        cli.wave_code,
        "--unit",
        cli.unit_code,
        "-n",
        str(n),
        "--format",
        fmt,
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert f"{n} codes written" in result.output
    with (out / "codes.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["code", "url", "image"]
        return list(reader)


def test_cli_issues_receipt_codes_that_open_the_survey(cli: CliDb, tmp_path: Path) -> None:
    out = tmp_path / "codes"
    before = _receipt_count(cli.engine)
    rows = _issue(cli, out)
    assert len(rows) == 5
    assert sorted(p.name for p in out.glob("*.png")) == sorted(row["image"] for row in rows)
    assert _receipt_count(cli.engine) == before + 5

    compact = []
    for row in rows:
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", row["code"]), row["code"]
        code = row["code"].replace("-", "")
        compact.append(code)
        assert row["url"] == f"{BASE_URL}/r/{code}"
        assert row["image"] == f"{code}.png"
        assert (out / row["image"]).read_bytes().startswith(PNG_SIGNATURE)
    assert len(set(compact)) == 5

    hashes = {hashlib.sha256(c.encode("ascii")).hexdigest() for c in compact}
    with Session(cli.engine) as s:
        stored = list(s.scalars(select(ReceiptCode).where(col(ReceiptCode.code_hash).in_(hashes))).all())
        wave = s.get(Wave, cli.world.open_wave_id)
    assert wave is not None
    assert {r.code_hash for r in stored} == hashes
    for r in stored:
        assert r.spent is False
        assert r.wave_id == cli.world.open_wave_id
        assert r.unit_id == cli.world.unit_id
        assert r.field_id is None
        assert r.expires_on <= wave.ends_on

    settings = make_settings(cli.url)
    with TestClient(app=create_app(settings, cli.engine), raise_server_exceptions=False) as client:
        for row in rows:
            parts = urlsplit(row["url"])
            assert f"{parts.scheme}://{parts.netloc}" == BASE_URL
            page = client.get(parts.path)
            assert page.status_code == 200, page.text[:500]
            assert form_token(page.text)
            assert "Xã Thử Nghiệm" in page.text  # the world's unit


def test_cli_receipt_images_decode_to_their_urls(cli: CliDb, tmp_path: Path) -> None:
    zbarimg()
    rows = _issue(cli, tmp_path / "codes", n=3)
    for row in rows:
        assert decode(tmp_path / "codes" / row["image"]) == [row["url"]]


def test_cli_svg_receipts_are_the_svg_of_their_urls(cli: CliDb, tmp_path: Path) -> None:
    rows = _issue(cli, tmp_path / "codes", n=2, fmt="svg")
    for row in rows:
        assert row["image"].endswith(".svg")
        assert (tmp_path / "codes" / row["image"]).read_bytes() == qr_svg(row["url"])


def test_issuing_codes_through_the_cli_is_audited(cli: CliDb, tmp_path: Path) -> None:
    before = _audit_rows(cli.engine)
    _issue(cli, tmp_path / "codes", n=4)
    after = _audit_rows(cli.engine)
    assert len(after) == len(before) + 1
    entry = after[-1]
    assert entry.action == "issue_codes"
    assert entry.actor == "cli"
    assert entry.entity == "wave"
    assert entry.entity_id == str(cli.world.open_wave_id)
    assert entry.after == {"unit_id": cli.world.unit_id, "field_id": None, "count": 4}


@pytest.mark.parametrize("unknown", ["unit", "wave"])
def test_cli_unknown_unit_or_wave_fails_and_stores_nothing(cli: CliDb, tmp_path: Path, unknown: str) -> None:
    out = tmp_path / "codes"
    wave = "no-such-wave-2099" if unknown == "wave" else cli.wave_code
    unit = "NO-SUCH-UNIT" if unknown == "unit" else cli.unit_code
    before_codes = _receipt_count(cli.engine)
    before_audit = len(_audit_rows(cli.engine))
    result = run("qr", "receipts", "--wave", wave, "--unit", unit, "-n", "3", "-o", str(out))
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert (wave if unknown == "wave" else unit) in lines[0]
    assert unknown in lines[0].lower()
    assert _receipt_count(cli.engine) == before_codes
    assert len(_audit_rows(cli.engine)) == before_audit
    assert not (out / "codes.csv").exists()


def test_cli_counter_poster_is_the_svg_of_the_counter_url(cli: CliDb, tmp_path: Path) -> None:
    target = tmp_path / "poster" / "x.svg"
    result = run("qr", "counter", cli.service_point_code, "-o", str(target))
    assert result.exit_code == 0, result.output
    url = f"{BASE_URL}/c/{cli.world.counter_token}"
    assert url in result.output
    svg = target.read_bytes()
    assert parse_svg(svg).tag.endswith("svg")
    assert svg == qr_svg(url)  # and qr_svg itself is decoded for real above


def test_cli_unknown_counter_fails(cli: CliDb, tmp_path: Path) -> None:
    target = tmp_path / "x.svg"
    result = run("qr", "counter", "NO-SUCH-COUNTER", "-o", str(target))
    assert result.exit_code != 0
    assert "NO-SUCH-COUNTER" in result.output
    assert not target.exists()


def test_questionnaire_check_accepts_the_seed_questionnaires(cli: CliDb) -> None:
    files = sorted(QUESTIONNAIRE_DIR.glob("*.yaml"))
    assert len(files) >= 2
    result = run("questionnaire", "check", *map(str, files))
    assert result.exit_code == 0, result.output
    ok_lines = [line for line in result.stdout.splitlines() if line.startswith("ok: ")]
    assert len(ok_lines) == len(files)
    for path in files:
        assert any(str(path) in line for line in ok_lines), path


def test_questionnaire_check_names_the_file_and_item_of_a_problem(cli: CliDb, tmp_path: Path) -> None:
    raw = yaml.safe_load((QUESTIONNAIRE_DIR / "quick_rating.yaml").read_text(encoding="utf-8"))
    item = raw["sections"][0]["items"][1]
    assert item["id"] == "went_well"
    del item["text"]["en"]
    broken = tmp_path / "broken_quick.yaml"
    broken.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    good = QUESTIONNAIRE_DIR / "quick_rating.yaml"

    result = run("questionnaire", "check", str(good), str(broken))
    assert result.exit_code == 1
    assert f"ok: {good}" in result.stdout
    assert "broken_quick.yaml" in result.stderr
    assert "went_well" in result.stderr
    assert "text.en" in result.stderr
    assert "Traceback" not in result.output

    missing = run("questionnaire", "check", str(tmp_path / "absent.yaml"))
    assert missing.exit_code == 1
    assert "absent.yaml" in missing.stderr
