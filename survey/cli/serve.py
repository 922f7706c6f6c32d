"""``sipas serve``: run the web platform."""

from __future__ import annotations

import click

from survey.cli.common import load_settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="worker processes (stateless)")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the platform (migrating the database first)."""
    import uvicorn

    from survey.db.engine import migrate

    settings = load_settings()
    migrate(settings.database_url)
    uvicorn.run(
        "survey.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # the client's address and scheme from X-Forwarded-* only behind the proxies the settings trust, the same
        # rule the rate limit applies (survey.limits.clients); no access log: it would keep every citizen's address
        proxy_headers=True,
        forwarded_allow_ips=list(settings.trusted_proxies),
        access_log=False,
    )
