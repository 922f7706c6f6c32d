"""What the pre-rendered survey page saves, per request, against the framework's own way (docs/benchmarks.md).

    .venv/bin/python -m benchmarks.bench_survey_page [--repeat 2000]

For the SIPAS-style questionnaire (the demo's longest page) in Vietnamese, in this process:

- rendering the template per request (what ``page()`` does for every other page) against joining the
  pre-rendered parts (``survey.citizen.pages``);
- compressing the page per request as Litestar's compression does (``gzip`` level 6, Litestar's
  ``GzipCompression`` writes through ``gzip.GzipFile`` the same way) against adding the token to the
  kept compressed head, and the bytes each sends, with plain gzip of the whole page as the yardstick.

Prints microseconds per page (median of five runs) and bytes.
"""

from __future__ import annotations

import argparse
import gzip
import io
import statistics
import time
from collections.abc import Callable

from seed_data import QUESTIONNAIRE_DIR
from survey.app import template_environment
from survey.citizen.pages import TEMPLATE, SurveyPage, survey_context
from survey.questionnaires.spec import load_file
from survey.receipts import codes
from survey.web import new_nonce, page_context

WHERE = "Sở Tư pháp · Hộ tịch"


def _per_call_us(work: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(repeat):
            work()
        runs.append((time.perf_counter() - began) / repeat * 1e6)
    return statistics.median(runs)


def _litestar_gzip(body: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(mode="wb", compresslevel=6, fileobj=buffer) as out:
        out.write(body)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    env = template_environment()
    spec = load_file(QUESTIONNAIRE_DIR / "sipas_5x22.yaml")
    page = SurveyPage.render(env, spec, "vi")
    secret = "s" * 48

    def token() -> str:
        return codes.sign_form_token(secret, "r:0123456789abcdef")

    def render() -> bytes:
        nonce = new_nonce()
        context = {**page_context("vi", nonce), **survey_context(spec=spec, where=WHERE, token=token())}
        return env.get_template(TEMPLATE).render(context).encode()

    plain = page.body(WHERE, token(), gzip=False)
    figures = {
        "template rendered per request": _per_call_us(render, max(1, args.repeat // 10)),
        "pre-rendered, plain": _per_call_us(lambda: page.body(WHERE, token(), gzip=False), args.repeat),
        "pre-rendered + Litestar's gzip (level 6)": _per_call_us(
            lambda: _litestar_gzip(page.body(WHERE, token(), gzip=False)), max(1, args.repeat // 10)
        ),
        "pre-rendered, pre-compressed (ours)": _per_call_us(lambda: page.body(WHERE, token(), gzip=True), args.repeat),
    }
    print(f"survey page ({len(plain):,} bytes, {len(spec.items)} questions), microseconds per page:")
    for name, us in figures.items():
        print(f"  {name:<45} {us:8.1f}")
    ours, whole = page.body(WHERE, token(), gzip=True), _litestar_gzip(plain)
    print("bytes sent:")
    print(f"  {'plain':<45} {len(plain):8,}")
    print(f"  {'gzip of the whole page (Litestar)':<45} {len(whole):8,}")
    print(f"  {'pre-compressed (ours)':<45} {len(ours):8,}  ({(len(ours) / len(whole) - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
