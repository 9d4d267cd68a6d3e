"""A protocol-faithful fake Phorge: Conduit over real HTTP on loopback, and a webhook sender.

It answers Conduit the way the real Phorge recorded in ``../shared/phabricator/captured/`` does:
``POST /api/<method>`` with a form-encoded ``params`` JSON (token in ``__conduit__.token``) and
``output=json``; always HTTP 200 with ``{"result", "error_code", "error_info"}``; ``*.search`` results
with ``data``, ``maps``, ``query`` and ``cursor`` (``after`` pagination by id). A JSON request body or
a bad token gets the real error codes. It starts seeded with the captured revisions (D1, D2, D4 of
``flow-run1``, ``flow-run2``, ``flow-nodaemons``) and their exact transactions, so the captured
webhook bodies point at things this fake knows.

Reviews happen through Python methods that write the same transaction groups Phorge writes (an accept
is ``accept`` + ``status`` when the status changes, newest first), and :class:`WebhookSender` sends
the Herald body Phorge would: pretty-printed JSON with 2-space indent and a trailing newline, signed
``hex(HMAC-SHA256(key, body))``. Faults: :meth:`FakePhorge.fail_next` answers the next N Conduit
calls with HTTP 500 (Conduit down), :meth:`FakePhorge.fail_method` the next N calls of one method.

``differential.changeset.search`` (the files a diff touches) is not in the captures; it answers in
the shape Phorge's source gives it: ``DifferentialChangeset::getFieldValuesForConduit`` (``diffPHID``
and ``path`` with ``displayPath`` and ``absolutePath.base64``), plus the fields the search engine's
extensions add to every object (``dateCreated``/``dateModified``; ``policy`` with the one capability a
changeset has, ``view``), type ``DCNG``, constraint ``diffPHIDs``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import string
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

CAPTURED = Path(__file__).resolve().parents[3] / "shared" / "phabricator" / "captured"
CAPTURED_KEY = "h7japczie7m42whc4lfxhc7ctyvrliyz"
ALICE = "PHID-USER-fc63fgipquhddcptuzec"
BOB = "PHID-USER-ntf2ahgzevbcvtl7hazt"
HERALD_RULE = "PHID-HRUL-eec3dnmaiwmv25jfnhhi"
_STATUS_NAMES = {
    "needs-review": ("Needs Review", "magenta"),
    "needs-revision": ("Needs Revision", "red"),
    "changes-planned": ("Changes Planned", "red"),
    "accepted": ("Accepted", "green"),
    "published": ("Closed", None),
    "abandoned": ("Abandoned", None),
    "draft": ("Draft", None),
}


@dataclass
class Revision:
    id: int
    phid: str
    title: str
    author: str
    status: str
    diff: str
    reviewers: dict[str, str]
    repository: str | None = None
    projects: list[str] = field(default_factory=list)
    summary: str = ""
    test_plan: str = ""
    created: int = 0
    modified: int = 0
    transactions: list[dict[str, Any]] = field(default_factory=list)
    """Newest first, in transaction.search's shape."""


class FakePhorge:
    """The fake install. Use as a context manager; :attr:`url` is its base URL."""

    def __init__(self, token: str = "api-orchbottesttoken0000000000", *, seed: int = 7) -> None:
        self.token = token
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.users: dict[str, dict[str, str]] = {}
        self.projects: dict[str, dict[str, Any]] = {}
        self.revisions: dict[str, Revision] = {}
        self.targets: dict[str, dict[str, Any]] = {}
        self.changesets: dict[str, list[str]] = {}
        """Diff PHID -> the repository-relative paths it touches."""
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.comments: list[tuple[str, str]] = []
        self.messages: list[dict[str, Any]] = []
        self.timings: list[tuple[float, float]] = []
        """(start, end) wall-clock times of every Conduit request served: Conduit's own time."""
        self._failures = 0
        self._method_failures: dict[str, int] = {}
        self._next_xact = 100
        self.add_user("alice", "Alice Author", phid=ALICE)
        self.add_user("bob", "Bob Reviewer", phid=BOB)
        self.bot = self.add_user("orchbot", "Orchestrator Bot")
        for flow in ("flow-run1.json", "flow-run2.json", "flow-nodaemons.json"):
            self._seed(json.loads((CAPTURED / flow).read_text()))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-phorge", daemon=True)

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> FakePhorge:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_next(self, count: int) -> None:
        """Answer the next ``count`` Conduit requests with HTTP 500 (Conduit down)."""
        with self._lock:
            self._failures = count

    def fail_method(self, method: str, count: int) -> None:
        """Answer the next ``count`` calls of ``method`` only with HTTP 500."""
        with self._lock:
            self._method_failures[method] = count

    def called(self, method: str) -> list[dict[str, Any]]:
        """The params of every call of ``method`` answered so far (tokens removed)."""
        with self._lock:
            return [params for name, params in self.calls if name == method]

    # ------------------------------------------------------------------ the world
    def _phid(self, kind: str, length: int = 20) -> str:
        alphabet = string.ascii_lowercase + string.digits
        return f"PHID-{kind}-" + "".join(self._random.choice(alphabet) for _ in range(length))

    def add_user(self, username: str, real_name: str = "", *, phid: str | None = None) -> str:
        phid = phid or self._phid("USER")
        self.users[phid] = {"username": username, "realName": real_name or username.title()}
        return phid

    def user(self, username: str) -> str:
        return next(phid for phid, u in self.users.items() if u["username"] == username)

    def add_project(self, slug: str, members: list[str]) -> str:
        phid = self._phid("PROJ")
        self.projects[phid] = {"slug": slug, "name": slug.replace("-", " ").title(), "members": list(members)}
        return phid

    def add_build_target(self) -> str:
        phid = self._phid("HMBT")
        self.targets[phid] = {"status": "target/waiting", "id": len(self.targets) + 1}
        return phid

    def _seed(self, flow: dict[str, Any]) -> None:
        item = flow["differential.revision.search (after accept)"]["data"][0]
        fields = item["fields"]
        reviewers = {r["reviewerPHID"]: r["status"] for r in item["attachments"]["reviewers"]["reviewers"]}
        revision = Revision(
            id=item["id"],
            phid=item["phid"],
            title=fields["title"],
            author=fields["authorPHID"],
            status=fields["status"]["value"],
            diff=fields["diffPHID"],
            reviewers=reviewers,
            repository=fields["repositoryPHID"],
            summary=fields["summary"],
            test_plan=fields["testPlan"],
            created=fields["dateCreated"],
            modified=fields["dateModified"],
            transactions=list(flow["transaction.search"]["data"]),
        )
        self.revisions[revision.phid] = revision
        self._next_xact = max(self._next_xact, *(t["id"] + 100 for t in revision.transactions))

    def revision(self, ref: str | int) -> Revision:
        if isinstance(ref, int) or not str(ref).startswith("PHID-"):
            number = int(str(ref).removeprefix("D"))
            return next(r for r in self.revisions.values() if r.id == number)
        return self.revisions[str(ref)]

    def _transaction(
        self, revision: Revision, kind: str, author: str, fields: dict[str, Any] | None = None
    ) -> str:
        self._next_xact += 1
        now = int(time.time())
        phid = self._phid("XACT-DREV", 15)
        revision.transactions.insert(
            0,
            {
                "id": self._next_xact,
                "phid": phid,
                "type": kind,
                "authorPHID": author,
                "objectPHID": revision.phid,
                "dateCreated": now,
                "dateModified": now,
                "groupID": None,
                "comments": [],
                "fields": fields or {},
            },
        )
        revision.modified = now
        return phid

    def _set_status(self, revision: Revision, status: str, author: str) -> list[str]:
        if revision.status == status:
            return []
        old, revision.status = revision.status, status
        return [self._transaction(revision, "status", author, {"old": old, "new": status})]

    def create_revision(
        self,
        author: str,
        title: str,
        reviewers: list[str],
        *,
        repository: str | None = None,
        projects: list[str] | None = None,
        paths: list[str] | None = None,
    ) -> Revision:
        """A new revision in ``needs-review`` (author and reviewers by username) whose diff touches
        ``paths`` (default ``README.md``)."""
        with self._lock:
            author_phid = self.user(author)
            number = max((r.id for r in self.revisions.values()), default=0) + 1
            revision = Revision(
                id=number,
                phid=self._phid("DREV"),
                title=title,
                author=author_phid,
                status="needs-review",
                diff=self._phid("DIFF"),
                reviewers={self.user(name): "added" for name in reviewers},
                repository=repository,
                projects=list(projects or []),
                created=int(time.time()),
            )
            self.revisions[revision.phid] = revision
            self.changesets[revision.diff] = list(paths if paths is not None else ["README.md"])
            self._transaction(revision, "create", author_phid)
            self._transaction(
                revision, "update", author_phid, {"old": None, "new": revision.diff, "commitPHIDs": []}
            )
            self._transaction(revision, "title", author_phid, {"old": "", "new": title})
            return revision

    def accept(self, ref: str | int, username: str, comment: str | None = None) -> list[str]:
        """``username`` accepts; the transactions of the group, newest first (as a webhook lists them)."""
        with self._lock:
            revision, actor = self.revision(ref), self.user(username)
            group = [self._transaction(revision, "accept", actor)]
            if comment:
                group.append(self._transaction(revision, "comment", actor))
            revision.reviewers[actor] = "accepted"
            if not any(s == "rejected" for s in revision.reviewers.values()):
                group += self._set_status(revision, "accepted", actor)
            return list(reversed(group))

    def request_changes(self, ref: str | int, username: str) -> list[str]:
        with self._lock:
            revision, actor = self.revision(ref), self.user(username)
            group = [self._transaction(revision, "request-changes", actor)]
            revision.reviewers[actor] = "rejected"
            group += self._set_status(revision, "needs-revision", actor)
            return list(reversed(group))

    def abandon(self, ref: str | int) -> list[str]:
        with self._lock:
            revision = self.revision(ref)
            group = [self._transaction(revision, "abandon", revision.author)]
            group += self._set_status(revision, "abandoned", revision.author)
            return list(reversed(group))

    def update_diff(self, ref: str | int, paths: list[str] | None = None) -> list[str]:
        """The author uploads a new diff (touching ``paths``, default: those of the previous one):
        accepts become ``accepted-older``, review starts again."""
        with self._lock:
            revision = self.revision(ref)
            old, revision.diff = revision.diff, self._phid("DIFF")
            previous = self.changesets.get(old, [])
            self.changesets[revision.diff] = list(paths if paths is not None else previous)
            group = [
                self._transaction(revision, "update", revision.author, {"old": old, "new": revision.diff})
            ]
            for phid, status in revision.reviewers.items():
                if status in ("accepted", "rejected"):
                    revision.reviewers[phid] = f"{status}-older"
            group += self._set_status(revision, "needs-review", revision.author)
            return list(reversed(group))

    # ------------------------------------------------------------------ Conduit
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                del format, args

            def do_POST(self) -> None:
                started = time.time()
                try:
                    self._post()
                finally:
                    with fake._lock:
                        fake.timings.append((started, time.time()))

            def _post(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                method = self.path[len("/api/") :] if self.path.startswith("/api/") else ""
                with fake._lock:
                    failing = fake._failures > 0
                    if failing:
                        fake._failures -= 1
                    elif fake._method_failures.get(method, 0) > 0:
                        fake._method_failures[method] -= 1
                        failing = True
                if failing:
                    self._send(500, b"<html><body>Unhandled Exception</body></html>", "text/html")
                    return
                if not self.path.startswith("/api/"):
                    self._send(404, b"not found", "text/plain")
                    return
                envelope = fake.conduit(self.path[len("/api/") :], self.headers.get("Content-Type", ""), raw)
                self._send(200, json.dumps(envelope).encode(), "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def conduit(self, method: str, content_type: str, raw: bytes) -> dict[str, Any]:
        """One Conduit call: the envelope Phorge answers with."""
        if "application/x-www-form-urlencoded" not in content_type:
            return _error("ERR-CONDUIT-CORE", "Conduit requests must be form-encoded (params=JSON).")
        form = parse_qs(raw.decode())
        try:
            params = json.loads(form.get("params", ["{}"])[0])
        except ValueError:
            return _error("ERR-CONDUIT-CORE", "Invalid parameter information was passed to method.")
        token = (params.pop("__conduit__", None) or {}).get("token")
        if token != self.token:
            return _error(
                "ERR-INVALID-AUTH",
                "API token does not match any known token, or is not valid for this install.",
            )
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return _error("ERR-CONDUIT-CORE", f"Conduit method '{method}' does not exist.")
        with self._lock:
            self.calls.append((method, params))
            try:
                return {"result": handler(params), "error_code": None, "error_info": None}
            except _ConduitFault as fault:
                return _error(fault.code, fault.info)

    def _page(self, items: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        limit = int(params.get("limit") or 100)
        after = params.get("after")
        if after is not None:
            items = [i for i in items if i["id"] < int(after)]
        page = items[:limit]
        more = len(items) > limit
        return {
            "data": page,
            "maps": {},
            "query": {"queryKey": None},
            "cursor": {
                "limit": limit,
                "after": str(page[-1]["id"]) if more else None,
                "before": None,
                "order": None,
            },
        }

    def _m_differential_revision_search(self, params: dict[str, Any]) -> dict[str, Any]:
        constraints = params.get("constraints") or {}
        unknown = set(constraints) - {"phids", "ids", "statuses", "authorPHIDs"}
        if unknown:
            raise _ConduitFault(
                "ERR-INVALID-CONSTRAINT", f'Constraint "{sorted(unknown)[0]}" is not a valid constraint.'
            )
        attachments = params.get("attachments") or {}
        found = sorted(self.revisions.values(), key=lambda r: r.id, reverse=True)
        if "phids" in constraints:
            found = [r for r in found if r.phid in constraints["phids"]]
        if "ids" in constraints:
            found = [r for r in found if r.id in constraints["ids"]]
        if "statuses" in constraints:
            found = [r for r in found if r.status in constraints["statuses"]]
        return self._page([self._revision_item(r, attachments) for r in found], params)

    def _revision_item(self, r: Revision, attachments: dict[str, Any]) -> dict[str, Any]:
        name, color = _STATUS_NAMES[r.status]
        item: dict[str, Any] = {
            "id": r.id,
            "type": "DREV",
            "phid": r.phid,
            "fields": {
                "title": r.title,
                "uri": f"{self.url}/D{r.id}",
                "authorPHID": r.author,
                "status": {
                    "value": r.status,
                    "name": name,
                    "closed": r.status in ("published", "abandoned"),
                    "color.ansi": color,
                },
                "repositoryPHID": r.repository,
                "diffPHID": r.diff,
                "summary": r.summary,
                "testPlan": r.test_plan,
                "isDraft": r.status == "draft",
                "holdAsDraft": False,
                "dateCreated": r.created,
                "dateModified": r.modified,
                "policy": {"view": "users", "edit": "users"},
            },
            "attachments": {},
        }
        if attachments.get("reviewers"):
            item["attachments"]["reviewers"] = {
                "reviewers": [
                    {
                        "reviewerPHID": phid,
                        "status": status,
                        "isBlocking": False,
                        "actorPHID": phid if status != "added" else None,
                    }
                    for phid, status in r.reviewers.items()
                ]
            }
        if attachments.get("projects"):
            item["attachments"]["projects"] = {"projectPHIDs": list(r.projects)}
        return item

    def _m_differential_changeset_search(self, params: dict[str, Any]) -> dict[str, Any]:
        constraints = params.get("constraints") or {}
        unknown = set(constraints) - {"diffPHIDs", "ids", "phids"}
        if unknown:
            raise _ConduitFault(
                "ERR-INVALID-CONSTRAINT", f'Constraint "{sorted(unknown)[0]}" is not a valid constraint.'
            )
        items = []
        number = 0
        for diff, paths in self.changesets.items():
            for path in paths:
                number += 1
                if "diffPHIDs" in constraints and diff not in constraints["diffPHIDs"]:
                    continue
                items.append(
                    {
                        "id": number,
                        "type": "DCNG",
                        "phid": f"PHID-DCNG-{hashlib.sha256(f'{diff}/{path}'.encode()).hexdigest()[:20]}",
                        "fields": {
                            "diffPHID": diff,
                            "path": {
                                "displayPath": path,
                                "absolutePath.base64": base64.b64encode(f"/{path}".encode()).decode(),
                            },
                            "dateCreated": 1795226000,
                            "dateModified": 1795226000,
                            "policy": {"view": "users"},
                        },
                        "attachments": {},
                    }
                )
        items.reverse()  # newest first, as every *.search answers by default
        return self._page(items, params)

    def _m_transaction_search(self, params: dict[str, Any]) -> dict[str, Any]:
        target = params.get("objectIdentifier")
        revision = self.revisions.get(str(target)) if target else None
        if revision is None:
            raise _ConduitFault("ERR-CONDUIT-CORE", f'No object "{target}" exists.')
        wanted = (params.get("constraints") or {}).get("phids")
        items = [t for t in revision.transactions if wanted is None or t["phid"] in wanted]
        page = self._page(items, params)
        page.pop("maps"), page.pop("query")
        page["cursor"].pop("order")
        return page

    def _m_user_search(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = (params.get("constraints") or {}).get("phids")
        items = [
            {
                "id": n,
                "type": "USER",
                "phid": phid,
                "fields": {
                    "username": u["username"],
                    "realName": u["realName"],
                    "roles": ["verified", "approved", "activated"],
                    "dateCreated": 1795225000,
                    "dateModified": 1795225000,
                    "policy": {"view": "public", "edit": "no-one"},
                },
                "attachments": {},
            }
            for n, (phid, u) in enumerate(self.users.items(), start=1)
            if wanted is None or phid in wanted
        ]
        items.reverse()
        return self._page(items, params)

    def _m_user_whoami(self, params: dict[str, Any]) -> dict[str, Any]:
        del params
        user = self.users[self.bot]
        return {
            "phid": self.bot,
            "userName": user["username"],
            "realName": user["realName"],
            "image": f"{self.url}/res/phabricator/profile.png",
            "uri": f"{self.url}/p/{user['username']}/",
            "roles": ["verified", "approved", "activated"],
            "primaryEmail": f"{user['username']}@example.com",
        }

    def _m_project_search(self, params: dict[str, Any]) -> dict[str, Any]:
        constraints = params.get("constraints") or {}
        items = []
        for n, (phid, p) in enumerate(self.projects.items(), start=1):
            if "phids" in constraints and phid not in constraints["phids"]:
                continue
            if "slugs" in constraints and p["slug"] not in constraints["slugs"]:
                continue
            item: dict[str, Any] = {
                "id": n,
                "type": "PROJ",
                "phid": phid,
                "fields": {"name": p["name"], "slug": p["slug"]},
                "attachments": {},
            }
            if (params.get("attachments") or {}).get("members"):
                item["attachments"]["members"] = {"members": [{"phid": m} for m in p["members"]]}
            items.append(item)
        return self._page(items, params)

    def _m_differential_revision_edit(self, params: dict[str, Any]) -> dict[str, Any]:
        revision = self.revision(str(params["objectIdentifier"]))
        phids = []
        for transaction in params.get("transactions") or []:
            if transaction.get("type") != "comment":
                raise _ConduitFault(
                    "ERR-CONDUIT-CORE", f"This fake only posts comments, not {transaction.get('type')}."
                )
            self.comments.append((f"D{revision.id}", str(transaction["value"])))
            phids.append(self._transaction(revision, "comment", self.bot))
        return {
            "object": {"id": revision.id, "phid": revision.phid},
            "transactions": [{"phid": p} for p in phids],
        }

    def _m_harbormaster_sendmessage(self, params: dict[str, Any]) -> None:
        target = self.targets.get(str(params.get("receiver")))
        if target is None:
            raise _ConduitFault("ERR-CONDUIT-CORE", "No such build target.")
        if params.get("type") not in ("pass", "fail", "work"):
            raise _ConduitFault("ERR-CONDUIT-CORE", "Message type must be pass, fail or work.")
        self.messages.append(dict(params))
        if params["type"] != "work":
            target["status"] = "target/passed" if params["type"] == "pass" else "target/failed"

    def _m_harbormaster_target_search(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = (params.get("constraints") or {}).get("phids")
        items = [
            {
                "id": t["id"],
                "type": "HMBT",
                "phid": phid,
                "fields": {
                    "name": "notify orchestrator",
                    "status": {"value": t["status"], "name": "Waiting for Message"},
                    "epochStarted": 1795226035,
                    "epochCompleted": None,
                    "buildGeneration": 1,
                },
                "attachments": {},
            }
            for phid, t in self.targets.items()
            if wanted is None or phid in wanted
        ]
        return self._page(items, params)

    # ------------------------------------------------------------------ webhooks
    def webhook_body(self, ref: str | int, transactions: list[str], *, test: bool = False) -> bytes:
        """The exact bytes Phorge's Herald sends for ``transactions`` of a revision."""
        revision = self.revision(ref)
        body = {
            "object": {"type": "DREV", "phid": revision.phid},
            "triggers": [{"phid": HERALD_RULE}],
            "action": {"test": test, "silent": False, "secure": False, "epoch": int(time.time())},
            "transactions": [{"phid": phid} for phid in transactions],
        }
        return (json.dumps(body, indent=2) + "\n").encode()


class _ConduitFault(Exception):
    def __init__(self, code: str, info: str) -> None:
        super().__init__(info)
        self.code = code
        self.info = info


def _error(code: str, info: str) -> dict[str, Any]:
    return {"result": None, "error_code": code, "error_info": info}


def sign(key: str, body: bytes) -> str:
    """Phorge's signature: lowercase hex HMAC-SHA256 of the raw body."""
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    """Posts Herald deliveries to ``url`` the way Phorge's daemons do (headers from the captures)."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.key = key
        self._http = httpx.Client(timeout=15.0)

    def close(self) -> None:
        self._http.close()

    def send(self, body: bytes, signature: str | None = None) -> httpx.Response:
        headers = {
            "User-Agent": "Arcanist/1.0 cURL/7.88.1",
            "Accept": "*/*",
            "Content-Type": "application/json",
            "X-Phabricator-Webhook-Signature": signature if signature is not None else sign(self.key, body),
        }
        return self._http.post(self.url, content=body, headers=headers)

    def send_unsigned(self, body: bytes) -> httpx.Response:
        return self._http.post(self.url, content=body, headers={"Content-Type": "application/json"})


def captured_deliveries() -> list[dict[str, Any]]:
    """The captured webhook requests (``webhooks-main.jsonl``), in arrival order."""
    lines = (CAPTURED / "webhooks-main.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def header(delivery: dict[str, Any], name: str) -> str | None:
    return next((value for key, value in delivery["headers"] if key.lower() == name.lower()), None)
