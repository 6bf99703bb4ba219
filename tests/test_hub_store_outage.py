"""A lost database link answers 503 (retry), not 500: seen by the chaos run after a PostgreSQL crash."""
from __future__ import annotations

import aiohttp
import psycopg
import pytest
from aiohttp import web
from octobot_signals.hub.api import error_middleware
from octobot_signals.hub.store_pg_conn import StoreUnavailable


@pytest.mark.parametrize("error", [psycopg.OperationalError("server closed the connection unexpectedly"),
                                   StoreUnavailable("PostgreSQL unreachable"), ValueError("a bug")])
async def test_store_outages_answer_503_and_bugs_500(error: Exception) -> None:
    async def handler(request: web.Request) -> web.Response:
        raise error

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/x", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.get(f"http://127.0.0.1:{port}/x") as response:
                body = await response.json()
    finally:
        await runner.cleanup()
    if isinstance(error, ValueError):
        assert (response.status, body["error"]) == (500, "internal")
    else:
        assert (response.status, body["error"]) == (503, "store_unavailable"), body
