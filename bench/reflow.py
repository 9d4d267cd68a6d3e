"""Overhead of running a Reflow network in an isolated child process, per task, vs running it in-process.

Each Task state runs its network in a fresh ``python -m orchestrator.integrations.reflow.child``
(:mod:`orchestrator.integrations.reflow.runner`): interpreter start, imports, validation, run, answer,
exit. This measures that against building and running the same network in this process
(:func:`orchestrator.integrations.reflow.running.run_network`), on the example ``greetings`` network
(fan-out/join through ``tpl_loop``), with a small and a large input, and the bare cost of starting an
interpreter for scale.

Run by hand: ``.venv/bin/python bench/reflow.py [--runs N] [--json]``. Reported as medians and ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.integrations.reflow.catalog import ReflowSettings
from orchestrator.integrations.reflow.components import resolve
from orchestrator.integrations.reflow.runner import run_isolated
from orchestrator.integrations.reflow.running import run_network
from orchestrator.logs import configure_logging

ROOT = Path(__file__).resolve().parents[1]


def median_ms(runs: int, call: Callable[[], Any]) -> float:
    call()  # warm up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure_logging("warning")
    settings = ReflowSettings(folder=ROOT / "statemachines" / "networks")
    spec = settings.load("greetings")
    components = resolve(spec)
    results: dict[str, Any] = {
        "python_start_ms": median_ms(
            args.runs, lambda: subprocess.run([sys.executable, "-c", "pass"], check=True)
        ),
        "python_import_child_ms": median_ms(
            args.runs,
            lambda: subprocess.run(
                [sys.executable, "-c", "import orchestrator.integrations.reflow.child, offbit_reflow"],
                check=True,
            ),
        ),
    }
    for size in (3, 1000):
        names = [f"person-{i}" for i in range(size)]

        def in_process(names: list[str] = names) -> None:
            outcome = run_network(spec, components, names)
            assert outcome.error is None and len(outcome.output) == len(names)

        def isolated(names: list[str] = names) -> None:
            assert len(run_isolated(spec, names, settings, timeout=300)) == len(names)

        inside = median_ms(args.runs, in_process)
        child = median_ms(args.runs, isolated)
        results[f"items_{size}"] = {
            "in_process_ms": round(inside, 2),
            "isolated_ms": round(child, 2),
            "overhead_ms": round(child - inside, 2),
            "ratio": round(child / inside, 1),
        }
    results["python_start_ms"] = round(results["python_start_ms"], 2)
    results["python_import_child_ms"] = round(results["python_import_child_ms"], 2)
    if args.json:
        print(json.dumps(results))
        return
    start, imports = results["python_start_ms"], results["python_import_child_ms"]
    print(f"interpreter start: {start} ms; with the child's imports: {imports} ms")
    for size in (3, 1000):
        r = results[f"items_{size}"]
        print(
            f"greetings x{size}: in-process {r['in_process_ms']} ms, isolated child {r['isolated_ms']} ms "
            f"(overhead {r['overhead_ms']} ms per task, x{r['ratio']})"
        )


if __name__ == "__main__":
    main()
