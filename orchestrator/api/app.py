"""The ASGI app: routers of the webhook endpoints (``hooks``), the JSON API (``rest``) and the UI (``ui``).

Endpoints are plain (sync) functions: FastAPI runs them in its thread pool, and the event store is
thread-safe. The runtime is on ``app.state.runtime``; routers reach it with :func:`runtime_of`.
"""

from __future__ import annotations

from fastapi import FastAPI, Request

from orchestrator.runtime import Runtime


def create_app(runtime: Runtime) -> FastAPI:
    """The app over ``runtime``."""
    from orchestrator.api import hooks, rest, ui  # noqa: PLC0415 - routers import this module

    app = FastAPI(
        title="orchestrator", version="0.1.0", docs_url="/api/docs", openapi_url="/api/openapi.json"
    )
    app.state.runtime = runtime
    app.include_router(hooks.router)
    app.include_router(rest.router)
    app.include_router(ui.router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def runtime_of(request: Request) -> Runtime:
    """The runtime of the app serving ``request`` (a FastAPI dependency)."""
    runtime = request.app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime
