"""Loads the example DAGs of ``statemachines/dags/`` into the test Airflow (read by Airflow, not pytest).

Airflow has one DAG folder, this one; the examples live beside the definitions that trigger them.
Running each example file here registers its DAGs under this file, which Airflow parses again when it
runs their tasks.
"""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[4] / "statemachines" / "dags"

for _path in sorted(EXAMPLES.glob("*.py")):
    runpy.run_path(str(_path), run_name=f"orchestrator_example_{_path.stem}")
