"""A small typed Conduit client over httpx.

Conduit is one form POST per call (``POST {base}/api/{method}`` with a ``params`` field holding JSON,
the token inside as ``__conduit__.token``, and ``output=json``) and one answer envelope (always HTTP
200, ``{"result", "error_code", "error_info"}``). The PyPI ``phabricator`` package is inactive and
ships a stale method schema (``transaction.search`` and ``differential.changeset.search`` missing), so
this module hand-writes the little it needs: the envelope turned into :class:`ConduitError`,
connection errors and 5xx retried with a jittered exponential back-off (:class:`.Backoff`) and then
raised as :class:`ConduitUnavailable`, and cursor pagination of ``*.search`` methods. The token is
never logged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import httpx
import structlog

from orchestrator.backoff import Backoff

log = structlog.get_logger(__name__)

MAX_PAUSE = 5.0
"""The longest pause between two attempts of one call (seconds): longer outages are the work
item's to wait out (:func:`.inbox.retry_later`), not a worker thread's."""


class ConduitError(Exception):
    """Conduit answered with an error envelope (``ERR-INVALID-AUTH``, ``ERR-CONDUIT-CORE``...)."""

    def __init__(self, method: str, code: str, info: str) -> None:
        super().__init__(f"{method}: {code}: {info}")
        self.method = method
        self.code = code
        self.info = info


class ConduitUnavailable(Exception):
    """Conduit could not be reached or answered 5xx / garbage, after the retries: try again later."""


class Conduit:
    """Calls to one Phabricator/Phorge install with one API token."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 15.0,
        attempts: int = 3,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``url``: the install's base URL (``https://phorge.example.com``); ``backoff``: the first
        pause before trying a failed call again (seconds, doubling, jittered, at most :data:`MAX_PAUSE`)."""
        self._url = url.rstrip("/")
        self._token = token
        self._attempts = max(1, attempts)
        self._backoff = Backoff(backoff, max(backoff, MAX_PAUSE))
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    # ------------------------------------------------------------------ the protocol
    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Call ``method`` with ``params``; its ``result``, or :class:`ConduitError` /
        :class:`ConduitUnavailable`."""
        body = dict(params or {})
        body["__conduit__"] = {"token": self._token}
        form = {"params": json.dumps(body), "output": "json"}
        endpoint = f"{self._url}/api/{method}"
        last = ""
        for attempt in range(self._attempts):
            if attempt:
                time.sleep(self._backoff.delay(attempt))
            started = time.perf_counter()
            try:
                response = self._http.post(endpoint, data=form)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                log.info("conduit.unreachable", method=method, attempt=attempt, error=last)
                continue
            if response.status_code >= 500:
                last = f"HTTP {response.status_code}"
                log.info("conduit.server_error", method=method, attempt=attempt, status=response.status_code)
                continue
            try:
                envelope = response.json()
            except ValueError:
                last = f"HTTP {response.status_code} with a body that is not JSON"
                log.info("conduit.not_json", method=method, attempt=attempt, status=response.status_code)
                continue
            if not isinstance(envelope, dict) or "result" not in envelope:
                raise ConduitUnavailable(f"{method}: HTTP {response.status_code}, not a Conduit answer")
            log.debug("conduit.called", method=method, ms=round((time.perf_counter() - started) * 1000, 1))
            code = envelope.get("error_code")
            if code:
                raise ConduitError(method, str(code), str(envelope.get("error_info") or ""))
            return envelope["result"]
        raise ConduitUnavailable(f"{method}: {last} (after {self._attempts} attempts)")

    def search(self, method: str, params: dict[str, Any], *, page_size: int = 100) -> list[dict[str, Any]]:
        """Every ``data`` item of a ``*.search`` method, following ``cursor.after``."""
        items: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page_params = dict(params, limit=page_size)
            if after is not None:
                page_params["after"] = after
            result = self.call(method, page_params)
            items.extend(result.get("data") or [])
            after = (result.get("cursor") or {}).get("after")
            if not after:
                return items

    # ------------------------------------------------------------------ the methods we use
    def revisions(self, *, phids: Iterable[str] = (), ids: Iterable[int] = ()) -> list[dict[str, Any]]:
        """``differential.revision.search`` with the reviewers and projects attachments."""
        constraints: dict[str, Any] = {}
        wanted_phids, wanted_ids = list(phids), list(ids)
        if wanted_phids:
            constraints["phids"] = wanted_phids
        if wanted_ids:
            constraints["ids"] = wanted_ids
        return self.search(
            "differential.revision.search",
            {"constraints": constraints, "attachments": {"reviewers": True, "projects": True}},
        )

    def changed_paths(self, diff_phid: str) -> list[str]:
        """The repository-relative paths a diff touches (``differential.changeset.search``), sorted.

        One changeset per path (a move has one for each side); ``fields.path.displayPath`` is the
        path as Differential shows it, with a trailing ``/`` for a directory. Shape from Phorge's
        ``DifferentialChangeset::getFieldValuesForConduit`` (the method is not in the captures).
        """
        changesets = self.search("differential.changeset.search", {"constraints": {"diffPHIDs": [diff_phid]}})
        paths = set()
        for item in changesets:
            shown = ((item.get("fields") or {}).get("path") or {}).get("displayPath")
            if isinstance(shown, str) and shown.strip("/"):
                paths.add(shown.strip("/"))
        return sorted(paths)

    def transactions(self, object_phid: str, phids: Iterable[str] = ()) -> list[dict[str, Any]]:
        """``transaction.search`` on one object, optionally only the transactions ``phids``."""
        params: dict[str, Any] = {"objectIdentifier": object_phid}
        wanted = list(phids)
        if wanted:
            params["constraints"] = {"phids": wanted}
        return self.search("transaction.search", params)

    def usernames(self, phids: Iterable[str]) -> dict[str, str]:
        """User PHID -> username (``user.search``); unknown PHIDs are left out."""
        wanted = sorted(set(phids))
        if not wanted:
            return {}
        users = self.search("user.search", {"constraints": {"phids": wanted}})
        return {u["phid"]: u["fields"]["username"] for u in users}

    def whoami(self) -> dict[str, Any]:
        """``user.whoami``: who the token belongs to."""
        result = self.call("user.whoami")
        assert isinstance(result, dict)
        return result

    def project_members(self, project: str) -> set[str]:
        """The user PHIDs of a project's members (``project.search``), by PHID or ``#slug``."""
        constraint = {"slugs": [project[1:]]} if project.startswith("#") else {"phids": [project]}
        projects = self.search(
            "project.search", {"constraints": constraint, "attachments": {"members": True}}
        )
        return {
            member["phid"]
            for item in projects
            for member in (item.get("attachments", {}).get("members", {}).get("members") or [])
        }

    def comment(self, revision: str, text: str) -> None:
        """Post ``text`` as a comment on ``revision`` (``D12`` or a PHID)."""
        self.call(
            "differential.revision.edit",
            {"objectIdentifier": revision, "transactions": [{"type": "comment", "value": text}]},
        )

    def send_harbormaster(self, target: str, kind: str, unit: list[dict[str, Any]] | None = None) -> None:
        """Report ``pass``/``fail``/``work`` to a build target waiting for a message."""
        params: dict[str, Any] = {"receiver": target, "type": kind}
        if unit:
            params["unit"] = unit
        self.call("harbormaster.sendmessage", params)

    def build_targets(self, phids: Iterable[str]) -> list[dict[str, Any]]:
        """``harbormaster.target.search`` by PHID."""
        return self.search("harbormaster.target.search", {"constraints": {"phids": list(phids)}})
