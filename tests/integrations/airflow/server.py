"""A real Apache Airflow 3 on loopback for tests and benchmarks: api-server + scheduler, SQLite.

Airflow lives in its own venv (``<repo>/.venv-airflow``, made by ``.ci/install.d/10-airflow.sh``); we
only start its processes and talk to them over HTTP. The set-up follows ``../shared/airflow/``: the
smallest set of components that runs tasks, LocalExecutor, the simple auth manager with ``admin``,
and fast heartbeats so a trigger-to-success round trip takes about a second.

Start-up cost is kept low: ``airflow db migrate`` (the slow part) runs once per Airflow version and
its database is kept as a template in the venv; each start copies it, reserializes the test DAGs
and starts both processes in their own process group (stopped as a group).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[3]
VENV = ROOT / ".venv-airflow"
DAGS = Path(__file__).resolve().parent / "dags"
USERNAME = PASSWORD = "admin"


class AirflowUnavailable(RuntimeError):
    """Airflow is not installed (run .ci/install.d/10-airflow.sh) or did not start."""


def installed() -> bool:
    """Whether the Airflow venv exists."""
    return (VENV / "bin" / "airflow").is_file()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _version() -> str:
    found = sorted((VENV / "lib").glob("python*/site-packages/apache_airflow-*.dist-info"))
    return found[0].name.removeprefix("apache_airflow-").removesuffix(".dist-info") if found else "unknown"


@dataclass
class AirflowServer:
    """One running Airflow (api-server and scheduler) whose home is ``home``."""

    home: Path
    port: int = field(default_factory=_free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """Every Airflow command's environment (``../shared/airflow/README.md``)."""
        secret = self._secret()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VIRTUAL_ENV"))}
        env.update(
            {
                "PATH": f"{VENV / 'bin'}:{env.get('PATH', '')}",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "2",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": secret,
                "AIRFLOW__API__SECRET_KEY": secret[:32],
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            }
        )
        return env

    def _secret(self) -> str:
        path = self.home / "jwt_secret"
        if not path.exists():
            path.write_text(secrets.token_hex(48))
        return path.read_text()

    def _airflow(self, *args: str, timeout: float = 300) -> None:
        proc = subprocess.run(
            [str(VENV / "bin" / "airflow"), *args],
            env=self.environment(),
            cwd=self.home,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise AirflowUnavailable(
                f"airflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr.decode()[-3000:]}"
            )

    def _database(self) -> None:
        """A migrated database: copied from the venv's template, made once per Airflow version."""
        template = VENV / "orchestrator-test-template" / f"airflow-{_version()}.db"
        if not template.exists():
            self._airflow("db", "migrate")
            template.parent.mkdir(exist_ok=True)
            partial = template.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(self.home / "airflow.db", partial)
            partial.replace(template)
        else:
            shutil.copyfile(template, self.home / "airflow.db")

    def start(self, timeout: float = 180) -> None:
        """Prepare the home, start both components and wait until the API answers."""
        if not installed():
            raise AirflowUnavailable(f"no Airflow venv at {VENV}: run .ci/install.d/10-airflow.sh")
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps({USERNAME: PASSWORD}))
        self._database()
        self._airflow("dags", "reserialize")
        logs = self.home / "process-logs"
        logs.mkdir(exist_ok=True)
        for name, args in (
            ("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]),
            ("scheduler", ["scheduler", "--skip-serve-logs"]),
        ):
            with (logs / f"{name}.log").open("wb") as out:
                self.processes.append(
                    subprocess.Popen(
                        [str(VENV / "bin" / "airflow"), *args],
                        env=self.environment(),
                        cwd=self.home,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # its own process group: stopped as a group
                    )
                )
        self._wait_until_up(timeout)

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.processes:
                if proc.poll() is not None:
                    raise AirflowUnavailable(f"an Airflow process exited early:\n{self.logs()}")
            try:
                if httpx.get(f"{self.base_url}/api/v2/version", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AirflowUnavailable(f"Airflow did not answer within {timeout} s:\n{self.logs()}")

    def logs(self) -> str:
        """The tail of both components' logs (for failure messages)."""
        parts = []
        for path in sorted((self.home / "process-logs").glob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop both components (see :func:`stop_groups`)."""
        stop_groups([proc.pid for proc in self.processes])
        for proc in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)  # reap
        self.processes.clear()

    def token(self) -> str:
        """A JWT for the admin user."""
        response = httpx.post(
            f"{self.base_url}/auth/token", json={"username": USERNAME, "password": PASSWORD}, timeout=30
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


def _group_alive(pgid: int) -> bool:
    """Whether a process group still has a live (non-zombie) member."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def stop_groups(pgids: list[int], grace: float = 20.0) -> None:
    """SIGTERM each process group (api-server and scheduler with their task runners), then SIGKILL
    whatever is left after ``grace`` seconds. Works from any process, not only the one that started them."""
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_group_alive(pgid) for pgid in pgids):
        time.sleep(0.2)
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
