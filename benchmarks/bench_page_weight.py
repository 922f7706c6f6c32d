"""Bytes a citizen's phone downloads for each survey page, raw and gzip-compressed.

    .venv/bin/python -m benchmarks.bench_page_weight

Serves the app in-process against a throwaway SQLite database with a small province, opens the
SIPAS-style page (by receipt code) and the quick-rating page (by counter code) in both languages,
and prints the sizes. The page is one request: styles are inline, there are no scripts or images.
"""

from __future__ import annotations

import gzip
import logging
import tempfile
from pathlib import Path

from litestar.testing import TestClient

from survey.app import create_app
from survey.db.engine import make_engine, migrate
from survey.settings import Settings
from tests.factories import build_world, new_code


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'weight.db'}"
        migrate(url)
        engine = make_engine(url)
        world = build_world(engine)
        settings = Settings(environment="test", database_url=url, secret_key="w" * 40)
        with TestClient(app=create_app(settings, engine)) as client:
            for label, path in (
                ("SIPAS 5x22 (receipt)", f"/r/{new_code(engine, world)}"),
                ("quick rating (counter)", f"/c/{world.counter_token}"),
            ):
                for lang in ("vi", "en"):
                    page = client.get(path, params={"lang": lang}, headers={"Accept-Encoding": "gzip"})
                    raw = page.content
                    print(
                        f"{label:24} {lang}: {len(raw):6,} bytes raw, {page.num_bytes_downloaded:5,} bytes sent "
                        f"gzip (level 6), {len(gzip.compress(raw, 9)):5,} at level 9; status {page.status_code}"
                    )
        engine.dispose()


if __name__ == "__main__":
    main()
