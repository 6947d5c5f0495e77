"""The embedded default model: serve the verified GGUF with llama.cpp on loopback.

The model file itself (install, verify) lives in `modelfile.py`; its public functions are
re-exported here so callers need one import.

Decisions:
- The server is `python -m llama_cpp.server` in its own session / process group on a free
  loopback port; `stop()` sends SIGTERM to the group, then SIGKILL after `STOP_GRACE_S`.
  Its own session keeps a terminal Ctrl-C away from it: we stop it, in order.
- No `--chat_format` is passed, so llama-cpp-python uses the chat template in the GGUF
  (Qwen2.5's ChatML). `--n_threads` and `--n_threads_batch` get the same count (default:
  the cores this process may run on); the server's own default decodes on half the cores,
  which measured about 40% slower here. `--interrupt_requests false`: by default a queued
  request cancels a streaming one.
- Readiness is `GET /v1/models` answering 200, polled every `POLL_S` until
  `cfg.startup_timeout_s`; a server that exits early raises `ModelError` with its log tail.
- Orphans: an attached server is stopped by `__exit__` (also on KeyboardInterrupt), by an
  `atexit` hook, and on Linux by `PR_SET_PDEATHSIG` (SIGKILL when the parent dies, even by
  SIGKILL), set by a small bootstrap that then runs the server module (`preexec_fn` is
  unsafe with threads). The kernel ties that signal to the *thread* that forked, so it is
  set only when the server is started from the main thread; a worker thread that exits
  would kill it.
- Environment variables that llama_cpp.server reads as settings (`HOST`, `PORT`, `API_KEY`,
  `MODEL`, ...) are removed from the child's environment so that only our flags count.
- The detached server (`personafoundry model serve`) has no death signal and no atexit hook;
  its pid/port live in `cache_home()/server.json`, which `model stop` reads. A state whose
  process is gone, or whose pid now runs another program, counts as absent (and is removed).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from personafoundry.config import EmbeddedConfig
from personafoundry.errors import ModelError
from personafoundry.modelfile import (
    MODEL_FILE,
    MODEL_SHA256,
    MODEL_SIZE,
    ModelInfo,
    install_model,
    model_path,
    verify_model,
)
from personafoundry.paths import cache_home

__all__ = [
    "MODEL_FILE", "MODEL_SHA256", "MODEL_SIZE", "EmbeddedServer", "ModelInfo", "ServerState", "detached_state", "free_port",
    "install_model", "model_path", "serve_detached", "stop_detached", "verify_model",
]  # fmt: skip

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
STOP_GRACE_S = 5.0
POLL_S = 0.2
STATE_FILE = "server.json"
PORT_ATTEMPTS = 3
READY_MARK = "Uvicorn running on"
SERVER_MODULE = "llama_cpp.server"
# Settings that llama_cpp.server reads from the environment (pydantic-settings, any case).
_SERVER_ENV_KEYS = {
    "HOST", "PORT", "CONFIG_FILE", "API_KEY", "MODEL", "MODEL_ALIAS", "CHAT_FORMAT",
    "N_CTX", "N_THREADS", "N_THREADS_BATCH", "N_GPU_LAYERS", "VERBOSE", "ROOT_PATH",
    "SSL_KEYFILE", "SSL_CERTFILE", "INTERRUPT_REQUESTS", "CACHE", "SEED",
}  # fmt: skip


def free_port(host: str = HOST) -> int:
    """A TCP port that was free a moment ago (the OS picks it when binding port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = HOST) -> bool:
    """True if something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def resolve_threads(cfg: EmbeddedConfig) -> int:
    """The configured thread count, or every core this process may run on."""
    if cfg.n_threads:
        return cfg.n_threads
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def server_command(cfg: EmbeddedConfig, model: Path, port: int) -> list[str]:
    """The llama_cpp.server command line for `model` on loopback `port`."""
    threads = str(resolve_threads(cfg))
    return [
        sys.executable, "-m", SERVER_MODULE, "--model", str(model),
        "--host", HOST, "--port", str(port), "--n_ctx", str(cfg.n_ctx),
        "--n_threads", threads, "--n_threads_batch", threads,
        "--model_alias", cfg.model_alias, "--interrupt_requests", "false",
    ]  # fmt: skip


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in _SERVER_ENV_KEYS}
    env["PYTHONUNBUFFERED"] = "1"
    return env


# Runs the server module after asking Linux to SIGKILL it when the forking thread dies.
# A bootstrap instead of `preexec_fn`, which is unsafe in a process with threads.
_BOOTSTRAP = """\
import ctypes, os, runpy, signal, sys
parent = int(sys.argv[1])
if parent:
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        sys.exit(1)
sys.argv = sys.argv[2:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def launch_command(cmd: list[str], parent_pid: int) -> list[str]:
    """Wrap `python -m MODULE ARGS` so the child dies with `parent_pid` (0: it does not)."""
    assert cmd[1] == "-m"
    return [cmd[0], "-c", _BOOTSTRAP, str(parent_pid), *cmd[2:]]


def log_tail(path: Path, lines: int = 25) -> str:
    """The last lines of a log file, for error messages."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


class _PortTaken(Exception):
    """Another process bound the chosen port first; start again on a new one."""


_LIVE: set[EmbeddedServer] = set()


@atexit.register
def _stop_live_servers() -> None:
    for server in list(_LIVE):
        server.stop()


class EmbeddedServer:
    """The llama.cpp OpenAI-compatible server for the embedded model, as a context manager.

    `with EmbeddedServer(cfg.embedded) as srv:` gives `srv.base_url` ("http://127.0.0.1:PORT/v1")
    and `srv.model` (the alias to send as `model`); leaving the block stops the server.
    """

    def __init__(
        self, cfg: EmbeddedConfig, *, model_file: Path | None = None, detached: bool = False
    ) -> None:
        self.cfg = cfg
        self.model = cfg.model_alias
        self.model_file = model_file
        self.detached = detached
        self.port: int | None = None
        self.log_path: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise ModelError("the embedded server is not started; call start() first.")
        return f"http://{HOST}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> Self:
        """Install/verify the model if needed, launch the server, wait until it answers."""
        if self.proc is not None:
            return self
        model = self.model_file or install_model()
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self._launch(model)
            try:
                self._wait_ready()
                return self
            except _PortTaken:
                log.info("port %s was taken before the server bound it (try %s)", self.port, attempt)  # fmt: skip
            except BaseException:
                self.stop()
                raise
        raise ModelError(f"embedded server found no free port in {PORT_ATTEMPTS} tries; retry.")

    def _launch(self, model: Path) -> None:
        self.port = free_port()
        logs = cache_home() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"embedded-server-{self.port}.log"
        tie = not self.detached and threading.current_thread() is threading.main_thread()
        parent = os.getpid() if tie and sys.platform == "linux" else 0
        with self.log_path.open("wb") as log_file:
            self.proc = subprocess.Popen(
                launch_command(server_command(self.cfg, model, self.port), parent),
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                env=_server_env(), start_new_session=True,
            )  # fmt: skip
        if not self.detached:
            _LIVE.add(self)
        log.info("embedded server pid %s starting on port %s", self.proc.pid, self.port)

    def _wait_ready(self) -> None:
        """Poll until the server answers; its own log must show it bound the port (not a
        stranger that took the port in between)."""
        assert self.proc is not None and self.log_path is not None
        deadline = time.monotonic() + self.cfg.startup_timeout_s
        url = f"{self.base_url}/models"
        while not (_answers(url) and READY_MARK in log_tail(self.log_path, 50)):
            if self.proc.poll() is not None:
                tail = log_tail(self.log_path)
                self.stop()
                if "address already in use" in tail.lower():
                    raise _PortTaken
                raise ModelError(
                    f"embedded server exited during startup; see {self.log_path}:\n{tail}"
                )
            if time.monotonic() > deadline:
                raise ModelError(
                    f"embedded server did not answer {url} within {self.cfg.startup_timeout_s}s; "
                    f"raise embedded.startup_timeout_s or see {self.log_path}:\n"
                    f"{log_tail(self.log_path)}"
                )
            time.sleep(POLL_S)
        log.info("embedded server ready at %s (model %s)", self.base_url, self.model)

    def stop(self) -> None:
        """Terminate the server's whole process group; safe to call more than once."""
        with self._lock:
            proc, self.proc = self.proc, None
            _LIVE.discard(self)
        if proc is None:
            return
        _kill_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            log.warning("embedded server pid %s ignored SIGTERM; killing it", proc.pid)
            _kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
        _kill_group(proc.pid, signal.SIGKILL)  # any straggler left in the group
        log.info("embedded server pid %s stopped", proc.pid)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.stop()


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --- detached server (`personafoundry model serve` / `model stop`) ----------------------


@dataclass(frozen=True)
class ServerState:
    """What `model stop` needs to find a detached server again."""

    pid: int
    pgid: int
    port: int
    base_url: str
    model: str
    log_path: str


def state_path() -> Path:
    return cache_home() / STATE_FILE


def write_state(state: ServerState, path: Path | None = None) -> None:
    """Write the state file atomically (temp file + rename)."""
    path = path or state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
    os.replace(tmp, path)


def read_state(path: Path | None = None) -> ServerState | None:
    """The recorded state, or None if there is none or it is unreadable."""
    try:
        return ServerState(**json.loads((path or state_path()).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _is_our_server(pid: int) -> bool:
    """True if `pid` is alive (not a zombie) and runs llama_cpp.server."""
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own exited child
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        if sys.platform == "linux":
            return False
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z" and SERVER_MODULE.encode() in cmdline


def detached_state(path: Path | None = None) -> ServerState | None:
    """The running detached server, or None (a stale state file is removed)."""
    path = path or state_path()
    state = read_state(path)
    if state is None:
        return None
    if not _is_our_server(state.pid):
        path.unlink(missing_ok=True)
        return None
    return state


def serve_detached(cfg: EmbeddedConfig, path: Path | None = None) -> ServerState:
    """Start a server that outlives this process (or return the one already running)."""
    path = path or state_path()
    running = detached_state(path)
    if running is not None:
        log.info("embedded server already running at %s (pid %s)", running.base_url, running.pid)
        return running
    server = EmbeddedServer(cfg, detached=True).start()
    assert server.pid is not None
    state = ServerState(
        server.pid, os.getpgid(server.pid), server.port or 0, server.base_url, server.model,
        str(server.log_path),
    )  # fmt: skip
    write_state(state, path)
    return state


def stop_detached(path: Path | None = None, grace_s: float = STOP_GRACE_S) -> bool:
    """Stop the detached server; False if none was running."""
    path = path or state_path()
    state = detached_state(path)
    if state is None:
        return False
    _kill_group(state.pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _is_our_server(state.pid) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    _kill_group(state.pgid, signal.SIGKILL)
    deadline = time.monotonic() + grace_s
    while _is_our_server(state.pid) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    path.unlink(missing_ok=True)
    log.info("embedded server pid %s stopped", state.pid)
    return True
