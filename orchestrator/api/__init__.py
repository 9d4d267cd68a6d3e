"""HTTP: one ASGI app (FastAPI) with the webhook endpoints, the JSON API and the web UI.

:func:`orchestrator.api.app.create_app` builds it over a :class:`~orchestrator.runtime.Runtime`;
``orchestrator serve`` runs it with uvicorn.
"""
