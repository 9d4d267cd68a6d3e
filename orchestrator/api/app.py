"""The ASGI app: routers of the webhook endpoints (``hooks``), the JSON API (``rest``), the UI (``ui``)
and the UI's actions (``actions``).

Endpoints are plain (sync) functions: FastAPI runs them in its thread pool, and the event store is
thread-safe. The runtime is on ``app.state.runtime``; routers reach it with :func:`runtime_of`. The API
tokens (:mod:`orchestrator.api.tokens`) are on ``app.state.tokens``, the hub that wakes live streams
(:mod:`orchestrator.api.live`) on ``app.state.live`` (closed at shutdown); the UI's CSS, JavaScript and
icons are served from the package under ``/static``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

from orchestrator.api.live import LiveHub
from orchestrator.runtime import Runtime

STATIC = Path(__file__).with_name("static")


def create_app(runtime: Runtime) -> FastAPI:
    """The app over ``runtime``."""
    from orchestrator.api import actions, errors, hooks, rest, ui  # noqa: PLC0415 - routers import this module
    from orchestrator.api.tokens import Tokens  # noqa: PLC0415 - beside the routers

    hub = LiveHub(runtime.store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        del app
        yield
        hub.close()  # live streams still open end now

    app = FastAPI(
        title="orchestrator",
        version="0.1.0",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.tokens = Tokens(runtime.store)
    app.state.live = hub
    errors.install(app)
    app.include_router(hooks.router)
    app.include_router(rest.router)
    app.include_router(ui.router)
    app.include_router(actions.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def live_hub_of(request: Request) -> LiveHub:
    """The live-update hub of the app serving ``request``."""
    hub = request.app.state.live
    assert isinstance(hub, LiveHub)
    return hub


def runtime_of(request: Request) -> Runtime:
    """The runtime of the app serving ``request`` (a FastAPI dependency)."""
    runtime = request.app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime
