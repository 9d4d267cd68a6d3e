"""Benchmark: state transitions per second of the in-memory engine, against moto and ``transitions``.

Run by hand (never from the test suite; the full run takes about 2.5 minutes)::

    .venv/bin/python bench/asl.py            # full run: 20 s of moto executions per workload
    .venv/bin/python bench/asl.py --quick    # short run: 3 s of moto executions per workload
    .venv/bin/python bench/asl.py --json     # the same numbers as one JSON document on stdout

Progress goes to stderr. The exit status is 1 when something ran wrong (moto's output or transition
count differs from ours, a run did not succeed, the memory child failed), else 0; a MISS is not an
error.

Three workloads, each run by every contender from the same definition and input: a 10-state Pass
chain; an inline Map over 500 items with a Pass item processor; a 200-iteration Choice loop whose
Pass state counts with ``States.MathAdd($.i, 1)``. The contenders:

* **ours**: ``run_local(definition, input, validate=False)`` from ``orchestrator.engine.local``.
  Also shown, not judged: the same with ``history=True`` (events in the ``get-execution-history``
  shape) and with ``validate=True`` when ``orchestrator.asl.validate.validate_definition`` can be
  imported and accepts the definitions.
* **moto**: moto's in-process ASL interpreter (LocalStack's), under
  ``mock_aws(config={"stepfunctions": {"execute_state_machine": True}})``: time ``start_execution``
  until the threads it started end (joined, not polled: a ``describe_execution`` poll costs ~1 ms
  of GIL and slowed moto's worker by up to ~40 %), then check with ``describe_execution`` that the
  run SUCCEEDED with our output; the first run's history must hold as many ``*StateEntered`` events
  as ours. A mismatch is printed loudly.
* **transitions.Machine**: a bare ``transitions.Machine`` whose states are the states our engine
  entered, stepped with one ``next`` trigger through the exact sequence our history shows
  (conditional edges only where a state has several successors, as the Choice state does).

A transition is one ``*StateEntered`` history event. The contenders are interleaved (each moto
execution is followed by as much wall time of rounds of the others), and each run records wall time
and the CPU time of this process (all threads, so moto's worker threads count). Rates are
transitions per CPU second at the median run and the targets are judged on them, because on a
shared host other processes move wall-clock times by 2x from minute to minute while CPU times hold;
the wall-clock rates and ratios are printed beside them.

Targets, each reported PASS or MISS:

* ours / moto >= 100x on every workload;
* transitions.Machine / ours <= 3x on every workload (we are within 3x of a bare state machine);
* an inline Map over 100,000 items, run first in a fresh subprocess with
  ``Limits(payload_bytes=10**9, max_events=None)``, peaks below 300 MB RSS (1 MB = 10**6 bytes;
  ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` printed by the child, which on Linux also covers
  the parent's RSS at fork time, hence first; the child's own ``VmHWM`` is printed beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from orchestrator.engine.interpreter import Limits
from orchestrator.engine.local import run_local

MOTO_OVER_TARGET = 100.0  # ours / moto must be at least this
MACHINE_OVER_TARGET = 3.0  # transitions.Machine / ours must be at most this
MEMORY_TARGET_MB = 300.0
MEMORY_ITEMS = 100_000
MOTO_RUN_TIMEOUT_S = 300.0
ROLE_ARN = "arn:aws:iam::123456789012:role/bench"
START = "__start__"


@dataclass(frozen=True)
class Workload:
    """One definition and its input, run by every contender."""

    name: str
    definition: dict[str, Any]
    make_input: Callable[[], Any]


@dataclass(frozen=True)
class Budget:
    """Seconds of moto executions per workload (the other contenders get as long again)."""

    moto_s: float
    moto_min_runs: int


FULL = Budget(moto_s=20.0, moto_min_runs=3)
QUICK = Budget(moto_s=3.0, moto_min_runs=2)


def pass_chain(n: int) -> dict[str, Any]:
    """``n`` Pass states in a row."""
    states: dict[str, Any] = {}
    for i in range(n):
        states[f"S{i}"] = (
            {"Type": "Pass", "Next": f"S{i + 1}"} if i < n - 1 else {"Type": "Pass", "End": True}
        )
    return {"StartAt": "S0", "States": states}


def inline_map() -> dict[str, Any]:
    """An inline Map over ``$.items`` whose item processor is one Pass state."""
    return {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Item",
                    "States": {"Item": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }


def choice_loop(n: int) -> dict[str, Any]:
    """Count ``$.i`` up to ``n`` with ``States.MathAdd`` and a Choice."""
    return {
        "StartAt": "Inc",
        "States": {
            "Inc": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)"}, "Next": "Check"},
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.i", "NumericLessThan": n, "Next": "Inc"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }


WORKLOADS = (
    Workload("pass-chain-10", pass_chain(10), lambda: {"payload": "x", "n": 1}),
    Workload("map-500", inline_map(), lambda: {"items": list(range(500))}),
    Workload("choice-loop-200", choice_loop(200), lambda: {"i": 0}),
)


# ----------------------------------------------------------------------------------------- timing


Sample = tuple[float, float]  # (wall seconds, CPU seconds of this process, all threads) of one run


class Stopwatch:
    """Wall and process CPU time from construction to ``stop``."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def stop(self) -> Sample:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


@dataclass
class Timing:
    """The runs of one contender on one workload."""

    transitions_per_run: int
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, sample: Sample) -> None:
        self.wall.append(sample[0])
        self.cpu.append(sample[1])

    @property
    def rate(self) -> float:
        """Transitions per CPU second at the median run (what the targets are judged on)."""
        return self.transitions_per_run / statistics.median(self.cpu)

    @property
    def wall_rate(self) -> float:
        """Transitions per wall-clock second at the median run."""
        return self.transitions_per_run / statistics.median(self.wall)

    def to_json(self) -> dict[str, Any]:
        return {
            "transitions_per_run": self.transitions_per_run,
            "runs": len(self.wall),
            "cpu_median_s": statistics.median(self.cpu),
            "cpu_min_s": min(self.cpu),
            "wall_median_s": statistics.median(self.wall),
            "wall_mean_s": statistics.fmean(self.wall),
            "wall_min_s": min(self.wall),
            "transitions_per_cpu_s": self.rate,
            "transitions_per_wall_s": self.wall_rate,
        }


def entered_names(history: list[dict[str, Any]]) -> list[str]:
    """The state names of the ``*StateEntered`` events, in order."""
    return [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------- ours


def ours_runner(w: Workload, **kwargs: Any) -> Callable[[], Sample]:
    """One timed ``run_local`` of the workload; raises if it does not succeed."""
    value, pristine = w.make_input(), w.make_input()

    def run() -> Sample:
        watch = Stopwatch()
        result = run_local(w.definition, value, **kwargs)
        elapsed = watch.stop()
        if result["status"] != "SUCCEEDED":
            raise RuntimeError(f"{w.name}: our engine ended {result['status']} with {kwargs}: {result}")
        if value != pristine:
            raise RuntimeError(f"{w.name}: run_local changed its input")
        return elapsed

    return run


def validate_runner(w: Workload) -> tuple[Callable[[], Sample] | None, str]:
    """A ``validate=True`` runner when ``validate_definition`` exists and accepts ``w``, else why not."""
    try:
        from orchestrator.asl.validate import validate_definition  # noqa: PLC0415
    except Exception as exc:
        return None, f"validate_definition unavailable ({type(exc).__name__}: {exc})"
    try:
        problems = validate_definition(w.definition)
    except Exception as exc:
        return None, f"validate_definition raised {type(exc).__name__}: {exc}"
    if problems:
        return None, f"validate_definition rejects the definition: {problems!r}"
    return ours_runner(w, validate=True), "ok"


# ------------------------------------------------------------------------------------------- moto


class MotoRunner:
    """Executions of one workload in moto's in-process interpreter, checked against our output."""

    def __init__(self, sfn: Any, w: Workload, expected: Any) -> None:
        self.sfn = sfn
        self.name = w.name
        self.expected = expected
        self.input_json = json.dumps(w.make_input())
        self.arn: str = sfn.create_state_machine(
            name=w.name, definition=json.dumps(w.definition), roleArn=ROLE_ARN
        )["stateMachineArn"]
        self.runs = 0
        self.mismatches: list[str] = []
        self.last_arn = ""

    def run(self) -> Sample:
        """One execution: the time from ``start_execution`` until the threads it started end.

        Joining moto's threads instead of polling ``describe_execution`` keeps the poller from taking
        the GIL from moto's worker (a poll costs ~1 ms here and slowed a Map run by ~40 %).
        """
        self.runs += 1
        before = set(threading.enumerate())
        watch = Stopwatch()
        self.last_arn = self.sfn.start_execution(
            stateMachineArn=self.arn, name=f"run-{self.runs}", input=self.input_json
        )["executionArn"]
        for thread in set(threading.enumerate()) - before:
            while True:
                try:
                    thread.join(MOTO_RUN_TIMEOUT_S)
                    break
                except RuntimeError:  # another thread is still inside this one's start()
                    time.sleep(0.0001)
        elapsed = watch.stop()
        # Final by now; poll anyway in case moto ever finishes an execution outside those threads.
        deadline = time.perf_counter() + MOTO_RUN_TIMEOUT_S
        while (found := self.sfn.describe_execution(executionArn=self.last_arn))["status"] == "RUNNING":
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{self.name}: moto execution still RUNNING after {MOTO_RUN_TIMEOUT_S} s")
            time.sleep(0.005)
        if found["status"] != "SUCCEEDED":
            self.mismatch(f"status {found['status']}: {found.get('error')} {found.get('cause')}")
        elif json.loads(found["output"]) != self.expected:
            self.mismatch(f"output {found['output'][:200]!r} != ours {json.dumps(self.expected)[:200]!r}")
        return elapsed

    def transitions_of_last_run(self) -> int:
        """The ``*StateEntered`` events in the last execution's history."""
        count = 0
        kwargs: dict[str, Any] = {}
        while True:
            page = self.sfn.get_execution_history(executionArn=self.last_arn, maxResults=1000, **kwargs)
            count += sum(1 for e in page["events"] if e["type"].endswith("StateEntered"))
            if not page.get("nextToken"):
                return count
            kwargs = {"nextToken": page["nextToken"]}

    def mismatch(self, what: str) -> None:
        if what not in self.mismatches:
            self.mismatches.append(what)
            progress(f"!!!!!!!! {self.name}: MOTO MISMATCH: {what}")


# ------------------------------------------------------------------------------- transitions.Machine


class _Model:
    """The model a ``transitions.Machine`` drives; ``next`` and ``state`` are bound by the Machine."""

    next: Callable[[], bool]
    state: str

    def __init__(self) -> None:
        self.target = START


def machine_runner(w: Workload, sequence: list[str], errors: list[str]) -> Callable[[], Sample]:
    """A bare ``transitions.Machine`` stepped with ``next`` through ``sequence``, timed per pass."""
    from transitions import Machine  # noqa: PLC0415

    model = _Model()
    states = list(dict.fromkeys([START, *sequence]))
    machine = Machine(model=model, states=states, initial=START, auto_transitions=False)
    successors: dict[str, list[str]] = {}
    for src, dst in zip([START, *sequence], sequence, strict=False):
        if dst not in successors.setdefault(src, []):
            successors[src].append(dst)
    for src, dsts in successors.items():
        for dst in dsts:
            if len(dsts) == 1:
                machine.add_transition("next", src, dst)
            else:  # a branching state (Choice): take the edge our engine took at this step

                def goes_to(dst: str = dst) -> bool:
                    return model.target == dst

                machine.add_transition("next", src, dst, conditions=[goes_to])

    def run() -> Sample:
        machine.set_state(START)
        watch = Stopwatch()
        for name in sequence:
            model.target = name
            model.next()
        return watch.stop()

    run()
    if model.state != sequence[-1]:
        errors.append(f"{w.name}: transitions.Machine ended in {model.state!r}, not {sequence[-1]!r}")
    return run


# -------------------------------------------------------------------------------------- workloads


def bench_workload(sfn: Any, w: Workload, budget: Budget, errors: list[str]) -> dict[str, Any]:
    """All contenders on one workload, interleaved so that they share the machine's load.

    Each round is one moto execution, then rounds of (ours, Machine, ours with history, ours with
    validation) for as long as that moto execution took: on a busy host, every rate sees the same
    contention, so the ratios hold even when the absolute rates wander.
    """
    reference = run_local(w.definition, w.make_input(), validate=False, history=True)
    if reference["status"] != "SUCCEEDED":
        errors.append(f"{w.name}: our engine ended {reference['status']}: {reference}")
    sequence = entered_names(reference["history"])
    n = len(sequence)

    runners: dict[str, Callable[[], Sample]] = {
        "ours": ours_runner(w, validate=False),
        "machine": machine_runner(w, sequence, errors),
        "ours_history": ours_runner(w, validate=False, history=True),
    }
    validated, validate_note = validate_runner(w)
    if validated is not None:
        runners["ours_validate"] = validated
    timings = {key: Timing(n) for key in runners}
    for run in runners.values():
        run()  # warm-up

    moto = MotoRunner(sfn, w, reference["output"])
    moto.run()  # warm-up: moto builds its ASL parser lazily on first use
    moto_n = moto.transitions_of_last_run()
    if moto_n != n:
        moto.mismatch(f"moto entered {moto_n} states, ours {n}")
    moto_timing = Timing(moto_n)
    while len(moto_timing.wall) < budget.moto_min_runs or sum(moto_timing.wall) < budget.moto_s:
        moto_sample = moto.run()
        moto_timing.add(moto_sample)
        slot_end = time.perf_counter() + moto_sample[0]
        while True:
            for key, run in runners.items():
                timings[key].add(run())
            if time.perf_counter() >= slot_end:
                break
    errors.extend(f"{w.name}: MOTO MISMATCH: {m}" for m in moto.mismatches)

    ours, machine = timings["ours"], timings["machine"]
    ours_over_moto = ours.rate / moto_timing.rate
    machine_over_ours = machine.rate / ours.rate
    ours_over_moto_wall = ours.wall_rate / moto_timing.wall_rate
    machine_over_ours_wall = machine.wall_rate / ours.wall_rate
    return {
        "name": w.name,
        "ours": ours.to_json(),
        "ours_history": timings["ours_history"].to_json(),
        "ours_validate": timings["ours_validate"].to_json() if "ours_validate" in timings else None,
        "validate_note": validate_note,
        "moto": {**moto_timing.to_json(), "output_matches": not moto.mismatches},
        "machine": machine.to_json(),
        "ours_over_moto": ours_over_moto,
        "ours_over_moto_pass": ours_over_moto >= MOTO_OVER_TARGET,
        "ours_over_moto_wall": ours_over_moto_wall,
        "machine_over_ours": machine_over_ours,
        "machine_over_ours_pass": machine_over_ours <= MACHINE_OVER_TARGET,
        "machine_over_ours_wall": machine_over_ours_wall,
    }


# ----------------------------------------------------------------------------------------- memory


def vm_hwm_bytes() -> int | None:
    """This process's own peak RSS (Linux ``VmHWM``), or None where /proc is not there."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:  # noqa: PTH123
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def memory_child(items: int) -> None:
    """In the fresh child: run the big Map and print peak RSS as JSON.

    On Linux a child's ``ru_maxrss`` starts at its parent's peak RSS at fork time (the kernel carries
    it across fork and exec), so the parent runs this first, while it is still small; ``VmHWM`` (the
    child's own high-water mark) is printed beside it.
    """
    rss_scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * rss_scale
    value = {"items": list(range(items))}
    t0 = time.perf_counter()
    result = run_local(
        inline_map(), value, validate=False, limits=Limits(payload_bytes=10**9, max_events=None)
    )
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * rss_scale
    output = result.get("output")
    print(
        json.dumps(
            {
                "items": items,
                "status": result["status"],
                "output_ok": output == value["items"],
                "seconds": elapsed,
                "peak_rss_bytes_before_input": before,
                "peak_rss_bytes": peak,
                "vm_hwm_bytes": vm_hwm_bytes(),
            }
        )
    )


def bench_memory(items: int, errors: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(items)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        errors.append(f"memory child exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        return {"items": items, "error": proc.stderr.strip()[-2000:], "pass": False}
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if report["status"] != "SUCCEEDED" or not report["output_ok"]:
        errors.append(
            f"memory child: Map over {items} items ended {report['status']}, output ok {report['output_ok']}"
        )
    report["peak_rss_mb"] = report["peak_rss_bytes"] / 1e6
    report["target_mb"] = MEMORY_TARGET_MB
    report["pass"] = report["peak_rss_mb"] < MEMORY_TARGET_MB and report["status"] == "SUCCEEDED"
    return report


# ------------------------------------------------------------------------------------------ report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def rate(value: float) -> str:
    return f"{value:,.0f}"


def runs_rate(timing: dict[str, Any]) -> str:
    return f"{rate(timing['transitions_per_cpu_s'])} ({timing['runs']})"


def render(report: dict[str, Any]) -> str:
    lines = [
        f"ASL benchmark ({report['mode']}): Python {report['python']}, moto {report['moto_version']}, "
        f"transitions {report['transitions_version']}; {report['cpus']} CPUs, 1-min load "
        f"{report['load_average_1m']['before']:.1f} before, {report['load_average_1m']['after']:.1f} after",
        "t/s = state transitions (*StateEntered events) per CPU second at the median run (runs in parens);",
        "targets are judged on CPU time, which other processes on the host barely move; [wall-clock ratio]",
        "",
    ]
    header = (
        f"{'workload':<16} {'trans/run':>9} {'ours t/s':>17} {'moto t/s':>13} {'ours/moto [wall]':>17} "
        f"{'>=100x':>6} {'Machine t/s':>17} {'Machine/ours [wall]':>20} {'<=3x':>5}"
    )
    lines += [header, "-" * len(header)]
    for w in report["workloads"]:
        ours, moto, machine = w["ours"], w["moto"], w["machine"]
        vs_moto = f"{w['ours_over_moto']:.1f}x [{w['ours_over_moto_wall']:.1f}x]"
        vs_machine = f"{w['machine_over_ours']:.2f}x [{w['machine_over_ours_wall']:.2f}x]"
        lines.append(
            f"{w['name']:<16} {ours['transitions_per_run']:>9} "
            f"{runs_rate(ours):>17} {runs_rate(moto):>13} "
            f"{vs_moto:>17} "
            f"{verdict(w['ours_over_moto_pass']):>6} {runs_rate(machine):>17} "
            f"{vs_machine:>20} "
            f"{verdict(w['machine_over_ours_pass']):>5}"
        )
    lines += ["", "wall-clock t/s, and ours in other modes (CPU t/s; not judged):"]
    for w in report["workloads"]:
        validated = (
            rate(w["ours_validate"]["transitions_per_cpu_s"])
            if w["ours_validate"]
            else f"n/a - {w['validate_note']}"
        )
        lines.append(
            f"  {w['name']:<16} wall: ours {rate(w['ours']['transitions_per_wall_s']):>8}, "
            f"moto {rate(w['moto']['transitions_per_wall_s']):>6}, "
            f"Machine {rate(w['machine']['transitions_per_wall_s']):>8}   |   ours history=True "
            f"{rate(w['ours_history']['transitions_per_cpu_s']):>8}, validate=True {validated}"
        )
    mem = report["memory"]
    lines.append("")
    if "error" in mem:
        lines.append(f"memory: Map over {mem['items']:,} items FAILED: {mem['error']}   MISS")
    else:
        lines.append(
            f"memory: Map over {mem['items']:,} items (fresh process): peak RSS {mem['peak_rss_mb']:.1f} MB "
            f"(ru_maxrss; {mem['peak_rss_bytes_before_input'] / 1e6:.1f} MB before the input was built"
            + (f", child's own VmHWM {mem['vm_hwm_bytes'] / 1e6:.1f} MB" if mem.get("vm_hwm_bytes") else "")
            + f"), {mem['seconds']:.1f} s, "
            f"{mem['status']}   target < {MEMORY_TARGET_MB:.0f} MB   {verdict(mem['pass'])}"
        )
    lines.append("")
    if report["errors"]:
        lines += ["!!!!!!!! CORRECTNESS PROBLEMS:", *(f"!!!!!!!!   {e}" for e in report["errors"])]
    else:
        lines.append(
            "correctness: every moto run SUCCEEDED with our output and the same number of transitions"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short run (about 3 s of moto per workload)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    parser.add_argument("--memory-child", type=int, metavar="ITEMS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child is not None:
        memory_child(args.memory_child)
        return 0

    budget = QUICK if args.quick else FULL
    errors: list[str] = []
    # First, while this process is small: a child's ru_maxrss starts at its parent's peak RSS.
    progress(f"memory: Map over {MEMORY_ITEMS:,} items in a fresh process ...")
    memory = bench_memory(MEMORY_ITEMS, errors)

    progress("moto: importing ...")
    import boto3  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    load_before = os.getloadavg()
    results: list[dict[str, Any]] = []
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        for w in WORKLOADS:
            progress(f"{w.name}: moto, ours, transitions.Machine, interleaved ...")
            results.append(bench_workload(sfn, w, budget, errors))

    report: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "python": platform.python_version(),
        "moto_version": metadata.version("moto"),
        "transitions_version": metadata.version("transitions"),
        "cpus": os.cpu_count(),
        "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        "targets": {
            "ours_over_moto_min": MOTO_OVER_TARGET,
            "machine_over_ours_max": MACHINE_OVER_TARGET,
            "memory_peak_rss_mb_max": MEMORY_TARGET_MB,
        },
        "workloads": results,
        "memory": memory,
        "errors": errors,
    }
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
