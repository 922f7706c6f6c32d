"""A bare Litestar app with one route returning a short text: the scale for ``bench_http``'s figures.

    .venv/bin/python -m uvicorn benchmarks.hello_app:create_app --factory --workers 2 --no-access-log

``bench_http`` serves it with the same uvicorn settings and worker count as the platform, so the
platform's requests per second can be read as a share of what Litestar itself does on the machine.
"""

from __future__ import annotations

from litestar import Litestar, MediaType, get


@get("/", media_type=MediaType.TEXT)
async def hello() -> str:
    return "Hello, world!"


def create_app() -> Litestar:
    return Litestar(route_handlers=[hello], debug=False)
