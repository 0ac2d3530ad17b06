"""Where each running service answers HTTP, and how a tool finds it.

`fivecogs run` and `fivecogs serve` record each service they start in `.stack/services.json` (its URL and pid)
and drop it when it stops. A tool looks for a service in this order: the address it is given (an option, else
FIVECOGS_<COG>_URL), else the stack's record of a running service, then the service's port
(FIVECOGS_<COG>_HTTP_PORT, else its default). When none answers, the error names every address tried and where
each came from, in one line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from fivecogs_shared.contracts import COGS
from fivecogs_shared.settings import DEFAULT_HTTP_PORTS

RECORD = "services.json"


def url_variable(cog: str) -> str:
    return f"FIVECOGS_{cog.upper()}_URL"


def local_url(host: str, port: int) -> str:
    """The address a tool on this machine uses for a service listening on host:port (any address: loopback)."""
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '', '::') else host}:{port}"


# -- the stack's record ------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(stack_dir: Path) -> Iterator[Path]:
    """The record, locked: `fivecogs serve` processes started side by side each add their own entry."""
    stack_dir.mkdir(parents=True, exist_ok=True)
    with (stack_dir / f"{RECORD}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield stack_dir / RECORD


def _read(path: Path) -> dict[str, dict[str, object]]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _write(path: Path, services: dict[str, dict[str, object]]) -> None:
    # Atomic: a reader sees the old record or the new one, never half of it.
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(services, indent=2, sort_keys=True))
    os.replace(partial, path)


def record_service(stack_dir: Path, cog: str, url: str, pid: int | None = None) -> None:
    with _locked(stack_dir) as path:
        _write(path, {**_read(path), cog: {"url": url, "pid": pid or os.getpid()}})


def forget_service(stack_dir: Path, cog: str, pid: int | None = None) -> None:
    """Drop the cog's entry, unless another process has recorded the cog since (its pid differs)."""
    with _locked(stack_dir) as path:
        services = _read(path)
        if cog in services and services[cog].get("pid") == (pid or os.getpid()):
            del services[cog]
            _write(path, services)


def running_services(stack_dir: Path) -> dict[str, str]:
    """The recorded URL of each service whose process still runs, in the value chain's order."""
    from fivecogs_ops.stack import _alive

    services = _read(stack_dir / RECORD)
    found: dict[str, str] = {}
    for cog in COGS:
        entry = services.get(cog, {})
        pid, url = entry.get("pid"), entry.get("url")
        if isinstance(pid, int) and isinstance(url, str) and _alive(pid):
            found[cog] = url
    return found


def service_env(stack_dir: Path) -> dict[str, str]:
    """`FIVECOGS_<COG>_URL` of each running service, for `fivecogs stack env`."""
    return {url_variable(cog): url for cog, url in running_services(stack_dir).items()}


# -- finding a service -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    url: str
    source: str  # where the address came from, as the error names it


class ServiceUnreachable(RuntimeError):
    pass


def candidates(cog: str, given: str | None = None, stack_dir: Path | None = None) -> list[Candidate]:
    """The addresses to try, in order: an address given (an option, else the env) is the only one tried."""
    if given:
        return [Candidate(given.rstrip("/"), "option")]
    if env := os.environ.get(url_variable(cog)):
        return [Candidate(env.rstrip("/"), url_variable(cog))]
    found: list[Candidate] = []
    if stack_dir is not None and (recorded := running_services(stack_dir).get(cog)):
        found.append(Candidate(recorded, str(stack_dir / RECORD)))
    port_variable = f"FIVECOGS_{cog.upper()}_HTTP_PORT"
    if port := os.environ.get(port_variable, "").strip():
        by_port = Candidate(f"http://127.0.0.1:{port}", port_variable)
    else:
        by_port = Candidate(local_url("127.0.0.1", DEFAULT_HTTP_PORTS[cog]), "default port")
    return found if any(c.url == by_port.url for c in found) else [*found, by_port]  # each address tried once


def find_service(cog: str, given: str | None = None, timeout: float = 3.0) -> str:
    """The first candidate that answers /healthz; else ServiceUnreachable naming each one tried."""
    tried = []
    for candidate in candidates(cog, given, checkout_stack_dir()):
        if (problem := _probe(candidate.url, timeout)) is None:
            return candidate.url
        tried.append(f"{candidate.url} ({candidate.source}): {problem}")
    raise ServiceUnreachable(f"cannot reach {cog}: tried {'; '.join(tried)}")


def _probe(url: str, timeout: float) -> str | None:
    try:
        httpx.get(f"{url}/healthz", timeout=timeout)
    except httpx.ConnectError as error:
        return "connection refused" if "refused" in str(error).lower() else str(error)
    except httpx.TimeoutException:
        return f"no answer within {timeout:.0f}s"
    except (httpx.HTTPError, ValueError) as error:  # ValueError: not a URL at all
        return str(error) or type(error).__name__
    return None


def checkout_stack_dir() -> Path | None:
    from fivecogs_ops.stack import LocalStack, StackError

    try:
        return LocalStack().dir
    except StackError:  # not in a checkout: no stack, so no record
        return None


@contextlib.contextmanager
def recorded(stack_dir: Path | None, cog: str, url: str, pid: int | None = None) -> Iterator[None]:
    """The service is in the stack's record while this runs (nothing is recorded outside a checkout)."""
    if stack_dir is None:
        yield
        return
    record_service(stack_dir, cog, url, pid)
    try:
        yield
    finally:
        forget_service(stack_dir, cog, pid)


def own_url(cog: str) -> str | None:
    """Where `fivecogs serve <cog>` will listen, from the service's own settings; None when they are refused
    (the service then says why itself)."""
    from pydantic import ValidationError

    from fivecogs_shared.settings import load_settings

    try:
        settings = load_settings(cog)
    except ValidationError:
        return None
    return local_url(settings.http_host, settings.http_port)
