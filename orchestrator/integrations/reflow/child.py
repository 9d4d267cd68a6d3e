"""The spawned child process that runs one network: ``python -m orchestrator.integrations.reflow.child``.

The parent (:mod:`orchestrator.integrations.reflow.runner`) writes one JSON request on stdin:
``{"network", "source", "spec", "input", "pythonpath"}``. The child validates the spec fully
(components imported, ports checked) before anything starts, runs it, and writes one JSON answer on
its original stdout: ``{"status": "succeeded", "output": ...}`` or
``{"status": "failed", "error": ..., "cause": ...}``. Everything else the process prints (actors'
``print``, the runtime's own output) is sent to stderr, so it can never corrupt the answer.

Then it leaves with ``os._exit``: ``shutdown()`` does not stop a Python actor that is still running,
and nothing here is worth a clean interpreter exit. If the parent goes away, the child notices within
half a second and leaves too.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from orchestrator.integrations.reflow.components import resolve
from orchestrator.integrations.reflow.running import Outcome, run_network
from orchestrator.integrations.reflow.spec import INVALID_NETWORK, NetworkInvalid, parse_spec

INVALID_OUTPUT = "Reflow.InvalidOutput"


def answer(request: dict[str, Any]) -> Outcome:
    """Validate and run the network of ``request``."""
    for folder in reversed(request.get("pythonpath", [])):
        sys.path.insert(0, folder)
    parent = os.getppid()
    try:
        spec = parse_spec(request["network"], request["spec"], request["source"])
        components = resolve(spec)
    except NetworkInvalid as exc:
        return Outcome(error=INVALID_NETWORK, cause=str(exc))
    return run_network(
        spec, components, request["input"], alive=lambda: os.getppid() == parent, shutdown=False
    )


def _encode(outcome: Outcome) -> bytes:
    try:
        return json.dumps(outcome.to_json(), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        failed = Outcome(error=INVALID_OUTPUT, cause=f"the network's result is not JSON: {exc}")
        return json.dumps(failed.to_json()).encode()


def main() -> None:
    """Read the request, answer it, leave."""
    answer_fd = os.dup(1)
    os.dup2(2, 1)  # from here on, stdout is stderr: prints cannot corrupt the answer
    sys.stdout = sys.stderr
    request = json.loads(sys.stdin.buffer.read())
    data = _encode(answer(request))
    view = memoryview(data)
    while view:
        written = os.write(answer_fd, view)
        view = view[written:]
    os.close(answer_fd)
    os._exit(0)


if __name__ == "__main__":
    main()
