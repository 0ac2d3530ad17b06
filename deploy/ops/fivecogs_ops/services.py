"""The five services as OS processes: start them, wait until ready, stop them (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from fivecogs_shared.contracts import COGS
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.settings import DEFAULT_HTTP_PORTS, OPERATOR_TOKENS_ENV


def run_service(cog: str) -> None:
    """Run one service in this process."""
    if cog not in COGS:
        raise KeyError(cog)
    importlib.import_module(f"fivecogs_{cog}.app").main()


def service_command(cog: str) -> list[str]:
    script = Path(sys.executable).parent / f"fivecogs-{cog}"
    return [str(script)] if script.exists() else [sys.executable, "-c", f"from fivecogs_{cog}.app import main; main()"]


@dataclass
class ServiceProcesses:
    env: dict[str, str]
    log_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_HTTP_PORTS))
    # Each service's own Kafka principal (the local stack's `service-<cog>`); absent: what `env` says.
    kafka: Mapping[str, KafkaAccess] = field(default_factory=dict, repr=False)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # What every process started here accepts (FIVECOGS_OPERATOR_TOKENS), and so what their callers must send.
    operator_token: str = field(kw_only=True, repr=False)

    def start(self, cog: str, *, name: str | None = None, extra_env: dict[str, str] | None = None) -> None:
        """Start `cog` as the process called `name` (default: the cog). A second instance of a service (same
        consumer group) gets a name and a port of its own in `ports`; `extra_env` is for this process only."""
        name = name or cog
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {
            # Processes started here run on a developer's machine or CI: e.g. the development webhook key is allowed.
            "FIVECOGS_ENVIRONMENT": "development",
            **os.environ,
            **self.env,
            **(self.kafka[cog].env() if cog in self.kafka else {}),
            OPERATOR_TOKENS_ENV: self.operator_token,  # over the caller's environment: this is what they send
            f"FIVECOGS_{cog.upper()}_HTTP_PORT": str(self.ports[name]),
            f"FIVECOGS_{cog.upper()}_LOG_FORMAT": "json",
            **(extra_env or {}),
        }
        if env["FIVECOGS_ENVIRONMENT"] == "development":
            # The demo's webhook receivers listen on this machine; outside development the setting is refused.
            env.setdefault("FIVECOGS_COMMUNICATION_WEBHOOK_ALLOW_LOOPBACK", "true")
        with (self.log_dir / f"{name}.log").open("ab") as log:  # the child keeps its own copy of the handle
            self.processes[name] = subprocess.Popen(
                service_command(cog), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def url(self, cog: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[cog]}{path}"

    def wait_ready(
        self, cogs: Iterable[str], timeout: float = 90, on_ready: Callable[[str, float], None] | None = None
    ) -> None:
        started, pending = time.monotonic(), list(cogs)
        while pending:
            for cog in list(pending):
                process = self.processes[cog]
                if process.poll() is not None:
                    raise RuntimeError(f"{cog} exited with {process.returncode}; see {self.log_dir / cog}.log")
                if _ready(self.url(cog, "/readyz")):
                    pending.remove(cog)
                    if on_ready:
                        on_ready(cog, time.monotonic() - started)
            if pending and time.monotonic() - started > timeout:
                raise TimeoutError(f"not ready after {timeout:.0f}s: {', '.join(pending)} (logs in {self.log_dir})")
            time.sleep(0.3)

    def stop(self, cog: str, *, kill: bool = False, grace: float = 15) -> int | None:
        process = self.processes.pop(cog, None)
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            return process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def stop_all(self, grace: float = 15) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for cog in list(self.processes):
            self.stop(cog, grace=max(0.1, deadline - time.monotonic()))


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False
