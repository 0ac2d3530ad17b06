"""compose.yaml and deploy/docker/Dockerfile: every service folder is wired into the container stack.

The services are discovered from the folders in services/, so a sixth service fails here until it has a
compose entry. No Docker engine is needed: the files are read, not run.

compose.yaml shares its common parts through a YAML anchor and merge keys (`<<: *service`); yaml.safe_load
resolves them, so every check below reads the values a service really ends up with.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "compose.yaml"
DOCKERFILE = "deploy/docker/Dockerfile"

COGS = sorted(
    path.name for path in (REPO_ROOT / "services").iterdir() if path.is_dir() and not path.name.startswith((".", "_"))
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict), "compose.yaml must be a mapping"
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict), "compose.yaml has no services mapping"
    return found


def _as_dict(value: Any) -> dict[str, Any]:
    """Compose accepts `environment` and `build.args` as a mapping or as a list of KEY=VALUE strings."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    assert isinstance(value, list), f"expected a mapping or a KEY=VALUE list, got {value!r}"
    return dict(item.partition("=")[::2] for item in value)


def _port_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def _published(entry: Any) -> tuple[list[int], list[int], str]:
    """(host ports, container ports, protocol) of one `ports` entry, short or long syntax."""
    if isinstance(entry, dict):
        published = entry.get("published")
        host_ports = _port_range(str(published)) if published not in (None, "") else []
        return host_ports, _port_range(str(entry["target"])), entry.get("protocol", "tcp")
    # YAML 1.1 reads some unquoted HOST:CONTAINER pairs as base-60 integers (2222:22 -> 133342).
    assert isinstance(entry, str), f"quote port mappings: {entry!r} was not read as a string"
    spec, _, protocol = entry.partition("/")
    if spec.startswith("["):  # [IPv6]:HOST:CONTAINER
        spec = spec.partition("]:")[2]
    parts = spec.split(":")
    host_text = parts[-2] if len(parts) >= 2 else ""
    return (_port_range(host_text) if host_text else []), _port_range(parts[-1]), protocol or "tcp"


def _healthcheck_test(service: dict[str, Any]) -> list[str]:
    healthcheck = service.get("healthcheck")
    assert isinstance(healthcheck, dict), "no healthcheck"
    assert not healthcheck.get("disable"), "healthcheck is disabled"
    test = healthcheck.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    assert isinstance(test, list), f"healthcheck.test must be a string or a list, got {test!r}"
    assert test, "healthcheck.test is empty"
    assert test[0] in ("CMD", "CMD-SHELL"), f"healthcheck.test runs nothing: {test!r}"
    assert len(test) > 1, "healthcheck.test has no command"
    return test


def test_services_are_discovered() -> None:
    assert COGS, "no service folders found in services/"
    for cog in COGS:
        assert (REPO_ROOT / "services" / cog / "pyproject.toml").is_file(), f"services/{cog} has no pyproject"


def test_merge_keys_are_resolved(compose: dict[str, Any]) -> None:
    # If `<<` survived as a key the merged values would be missing and every check below would be vacuous.
    def keys(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [str(key) for key in node] + [key for value in node.values() for key in keys(value)]
        if isinstance(node, list):
            return [key for value in node for key in keys(value)]
        return []

    assert "<<" not in keys(compose)
    assert "version" not in compose, "the Compose spec has no `version:` key"


@pytest.mark.parametrize("cog", COGS)
def test_service_is_built_from_the_shared_dockerfile(services: dict[str, dict[str, Any]], cog: str) -> None:
    assert cog in services, f"services/{cog} has no service in compose.yaml"
    build = services[cog].get("build")
    assert isinstance(build, dict), f"{cog}: build must be a mapping with context, dockerfile and args"
    context = REPO_ROOT / build.get("context", ".")
    assert context.resolve() == REPO_ROOT, f"{cog}: the build context must be the repository root"
    assert build.get("dockerfile") == DOCKERFILE
    assert (context / build["dockerfile"]).is_file()
    assert _as_dict(build.get("args")).get("COG") == cog


@pytest.mark.parametrize("cog", COGS)
def test_service_has_a_readiness_healthcheck(services: dict[str, dict[str, Any]], cog: str) -> None:
    test = _healthcheck_test(services[cog])
    assert any("/readyz" in part for part in test), f"{cog}: the healthcheck does not probe /readyz"


@pytest.mark.parametrize("cog", COGS)
def test_service_waits_for_healthy_kafka_and_postgres(services: dict[str, dict[str, Any]], cog: str) -> None:
    depends_on = services[cog].get("depends_on")
    assert isinstance(depends_on, dict), f"{cog}: depends_on must be a mapping with conditions"
    for dependency in ("kafka", "postgres"):
        assert dependency in depends_on, f"{cog} does not depend on {dependency}"
        assert depends_on[dependency].get("condition") == "service_healthy", (
            f"{cog} starts before {dependency} is healthy"
        )


@pytest.mark.parametrize("cog", COGS)
def test_service_environment_points_at_the_stack(services: dict[str, dict[str, Any]], cog: str) -> None:
    environment = _as_dict(services[cog].get("environment"))
    assert environment.get("KAFKA_BOOTSTRAP_SERVERS"), f"{cog}: KAFKA_BOOTSTRAP_SERVERS is not set"
    assert environment.get("DATABASE_URL"), f"{cog}: DATABASE_URL is not set"
    for server in str(environment["KAFKA_BOOTSTRAP_SERVERS"]).split(","):
        assert server.rpartition(":")[0] in services, f"{cog}: Kafka host {server!r} is not a compose service"
    database = urlsplit(str(environment["DATABASE_URL"]))
    assert database.scheme.startswith("postgres"), f"{cog}: DATABASE_URL is not a Postgres URL"
    assert database.hostname in services, f"{cog}: database host {database.hostname!r} is not a compose service"


@pytest.mark.parametrize("cog", COGS)
def test_service_publishes_its_http_port(services: dict[str, dict[str, Any]], cog: str) -> None:
    environment = _as_dict(services[cog].get("environment"))
    setting = f"FIVECOGS_{cog.upper()}_HTTP_PORT"
    assert setting in environment, f"{cog}: {setting} is not set"
    container_ports = [port for entry in services[cog].get("ports", []) for port in _published(entry)[1]]
    assert int(environment[setting]) in container_ports, f"{cog}: the HTTP port {environment[setting]} is not published"


@pytest.mark.parametrize("name", ["kafka", "postgres"])
def test_infrastructure_has_healthchecks(services: dict[str, dict[str, Any]], name: str) -> None:
    assert name in services, f"compose.yaml has no {name} service"
    _healthcheck_test(services[name])


def test_kafka_advertises_the_address_the_services_use(services: dict[str, dict[str, Any]]) -> None:
    # compose-start.sh fills deploy/kafka/server.properties: the internal listener is advertised as kafka:9092.
    script = (REPO_ROOT / "deploy" / "kafka" / "compose-start.sh").read_text()
    assert "s|\\${ADVERTISED_HOST}|kafka|g" in script
    assert "s|\\${ADVERTISED_PORT}|9092|g" in script
    for cog in COGS:
        kafka = _as_dict(services[cog].get("environment")).get("KAFKA_BOOTSTRAP_SERVERS", "")
        assert str(kafka) == "kafka:9092", f"{cog} bootstraps from {kafka!r}, which Kafka does not advertise"


def test_the_compose_broker_fills_every_placeholder_of_the_stack_config() -> None:
    template = (REPO_ROOT / "deploy" / "kafka" / "server.properties").read_text()
    script = (REPO_ROOT / "deploy" / "kafka" / "compose-start.sh").read_text()
    for placeholder in set(re.findall(r"\$\{([A-Z_]+)\}", template)):
        assert f"s|\\${{{placeholder}}}|" in script, f"compose-start.sh leaves ${{{placeholder}}} in the config"


def test_the_compose_acls_are_those_of_the_principals_module() -> None:
    from fivecogs_ops.principals import kafka_acls_arguments, stack_acls

    committed = (REPO_ROOT / "deploy" / "kafka" / "acls.txt").read_text().splitlines()
    assert committed == kafka_acls_arguments(stack_acls()), "regenerate deploy/kafka/acls.txt (docs/operations.md)"


@pytest.mark.parametrize("cog", COGS)
def test_each_service_connects_as_its_own_principal(services: dict[str, dict[str, Any]], cog: str) -> None:
    env = _as_dict(services[cog].get("environment"))
    assert env.get("KAFKA_SECURITY_PROTOCOL") == "SASL_PLAINTEXT"
    assert env.get("KAFKA_SASL_USERNAME") == f"service-{cog}"
    assert str(env.get("KAFKA_SASL_PASSWORD", "")).startswith(f"${{FIVECOGS_KAFKA_PASSWORD_SERVICE_{cog.upper()}:?")


def _host_ip(entry: Any) -> str | None:
    """The host interface a `ports` entry publishes on; None when it publishes on every interface."""
    if isinstance(entry, dict):
        return entry.get("host_ip") or None
    spec = str(entry).partition("/")[0]
    if spec.startswith("["):  # [IPv6]:HOST:CONTAINER
        return spec[1:].partition("]")[0]
    parts = spec.split(":")
    return parts[0] if len(parts) == 3 else None


def test_every_port_is_published_on_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    # The services listen on 0.0.0.0 inside their containers (Dockerfile): the host side decides who reaches them.
    for name, service in services.items():
        for entry in service.get("ports", []):
            assert _host_ip(entry) == "127.0.0.1", f"{name} publishes {entry!r} beyond loopback"


@pytest.mark.parametrize("cog", COGS)
def test_service_requires_operator_tokens(services: dict[str, dict[str, Any]], cog: str) -> None:
    # `${VAR:?message}`: compose refuses to start without it, rather than starting services that answer 401.
    tokens = str(_as_dict(services[cog].get("environment")).get("FIVECOGS_OPERATOR_TOKENS", ""))
    assert tokens.startswith("${FIVECOGS_OPERATOR_TOKENS:?"), f"{cog}: FIVECOGS_OPERATOR_TOKENS is not required"


def test_no_two_services_publish_the_same_host_port(services: dict[str, dict[str, Any]]) -> None:
    owners: dict[tuple[int, str], str] = {}
    for name, service in services.items():
        for entry in service.get("ports", []):
            host_ports, _, protocol = _published(entry)
            for port in host_ports:
                key = (port, protocol)
                assert key not in owners, f"host port {port}/{protocol} is published by {owners[key]} and {name}"
                owners[key] = name


# --- Dockerfile ---------------------------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, with line continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and pending):  # Docker drops these inside a continuation too
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        statement = (pending + line).strip()
        pending = ""
        if statement:
            keyword, _, arguments = statement.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


@pytest.fixture(scope="module")
def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's build stages, each starting with its FROM."""
    found: list[list[tuple[str, str]]] = []
    for keyword, arguments in _instructions((REPO_ROOT / DOCKERFILE).read_text()):
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, arguments))
    return found


def test_dockerfile_is_multi_stage(stages: list[list[tuple[str, str]]]) -> None:
    assert len(stages) >= 2, "the Dockerfile needs a builder stage and a separate runtime stage"


def test_dockerfile_selects_the_service_with_arg_cog(stages: list[list[tuple[str, str]]]) -> None:
    # An ARG belongs to the stage that declares it: a build stage needs it to install services/<cog>, and
    # the runtime stage needs its own to run fivecogs-<cog>.
    def declares_cog(stage: list[tuple[str, str]]) -> bool:
        return any(keyword == "ARG" and arguments.partition("=")[0] == "COG" for keyword, arguments in stage)

    assert any(declares_cog(stage) for stage in stages[:-1]), "no build stage declares ARG COG"
    assert declares_cog(stages[-1]), "the runtime stage does not declare ARG COG"


def test_dockerfile_runs_as_a_non_root_user(stages: list[list[tuple[str, str]]]) -> None:
    users = [arguments for keyword, arguments in stages[-1] if keyword == "USER"]
    assert users, "the runtime stage never switches away from root"
    user = users[-1].partition(":")[0]
    assert user, f"USER {users[-1]!r} names no user"
    assert user not in ("root", "0"), f"the runtime stage runs as {users[-1]!r}"


def test_dockerfile_has_a_healthcheck(stages: list[list[tuple[str, str]]]) -> None:
    healthchecks = [arguments for keyword, arguments in stages[-1] if keyword == "HEALTHCHECK"]
    assert healthchecks, "the runtime stage has no HEALTHCHECK"
    assert healthchecks[-1].upper() != "NONE", "the runtime stage disables its HEALTHCHECK"
    assert "/readyz" in healthchecks[-1]


def test_the_image_listens_on_every_interface_of_its_container(stages: list[list[tuple[str, str]]]) -> None:
    # Loopback, the services' default, is unreachable from outside a container, even through a published port.
    env = " ".join(arguments for keyword, arguments in stages[-1] if keyword == "ENV")
    assert "FIVECOGS_HTTP_HOST=0.0.0.0" in env.split()
    assert "FIVECOGS_OPERATOR_TOKENS" not in env  # a token baked into an image is in every copy of it
