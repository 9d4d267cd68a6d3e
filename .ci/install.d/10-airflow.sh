#!/usr/bin/env bash
# A real Apache Airflow 3 for the Airflow integration tests (tests/integrations/airflow), in its own venv
# at <repo>/.venv-airflow (gitignored): Airflow is a server the orchestrator talks to over HTTP, so it
# stays out of the orchestrator's environment. Idempotent: skips when the pinned version is installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=3.3.2
venv=.venv-airflow
if [ -x "$venv/bin/airflow" ] && "$venv/bin/python" -c "
import importlib.metadata, sys
sys.exit(importlib.metadata.version('apache-airflow') != '$version')" 2>/dev/null; then
  echo "apache-airflow==$version already installed in $venv"
  exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "apache-airflow==$version"
"$venv/bin/python" -c "import importlib.metadata; print('installed apache-airflow', importlib.metadata.version('apache-airflow'))"
