"""The embedded model: chunk assembly and hash checks, server lifecycle, no orphans.

Fast tests use small fake chunks in tmp_path. Tests marked `embedded` use the real GGUF
(installed into the user cache once, then verified quickly) and the real llama.cpp server.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from personafoundry.config import EmbeddedConfig
from personafoundry.embedded import (
    EmbeddedServer,
    ServerState,
    _is_our_server,
    _server_env,
    detached_state,
    free_port,
    port_open,
    read_state,
    serve_detached,
    server_command,
    stop_detached,
    write_state,
)
from personafoundry.errors import ModelError
from personafoundry.modelfile import (
    CHUNK_PACKAGES,
    MODEL_SHA256,
    MODEL_SIZE,
    assemble_model,
    chunk_paths,
    install_model,
    verify_model,
)

CHUNK_BYTES = [b"GGUF-head-", b"middle-bytes-" * 50, b"-tail"]
WRONG_HASH = "0" * 64


@pytest.fixture
def chunks(tmp_path: Path) -> list[Path]:
    paths = []
    for i, data in enumerate(CHUNK_BYTES, start=1):
        path = tmp_path / "chunks" / f"part{i:02d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


@pytest.fixture
def expect() -> dict:
    whole = b"".join(CHUNK_BYTES)
    return {"expected_sha256": hashlib.sha256(whole).hexdigest(), "expected_size": len(whole)}


def test_assemble_concatenates_chunks_in_order(chunks, expect, tmp_path):
    dest = tmp_path / "models" / "m.gguf"
    info = assemble_model(chunks, dest, **expect)
    assert dest.read_bytes() == b"".join(CHUNK_BYTES)
    assert info.ok and info.sha256 == expect["expected_sha256"]
    assert verify_model(False, path=dest, **expect).ok
    assert verify_model(True, path=dest, **expect).ok


def test_assemble_refuses_wrong_hash_naming_both_and_leaves_no_file(chunks, expect, tmp_path):
    dest = tmp_path / "models" / "m.gguf"
    with pytest.raises(ModelError) as err:
        assemble_model(chunks, dest, expected_sha256=WRONG_HASH, expected_size=None)
    assert WRONG_HASH in str(err.value)
    assert expect["expected_sha256"] in str(err.value)  # the hash actually found
    assert "pip install --force-reinstall" in str(err.value)
    assert list(dest.parent.iterdir()) == []


def test_assemble_refuses_wrong_size_before_copying(chunks, expect, tmp_path):
    dest = tmp_path / "models" / "m.gguf"
    with pytest.raises(ModelError, match="expected 7"):
        assemble_model(chunks, dest, expected_sha256=expect["expected_sha256"], expected_size=7)
    assert list(dest.parent.iterdir()) == []


def test_install_is_a_noop_when_a_verified_file_exists(chunks, expect, tmp_path):
    dest = tmp_path / "models" / "m.gguf"
    install_model(chunks, dest=dest, **expect)
    before = dest.stat().st_mtime_ns
    # An empty chunk list would fail the hash check if install tried to rebuild.
    assert install_model([], dest=dest, **expect) == dest
    assert dest.stat().st_mtime_ns == before


def test_install_rebuilds_a_corrupted_file(chunks, expect, tmp_path):
    dest = tmp_path / "models" / "m.gguf"
    install_model(chunks, dest=dest, **expect)
    dest.write_bytes(b"X" * expect["expected_size"])
    assert not verify_model(False, path=dest, **expect).ok
    install_model(chunks, dest=dest, **expect)
    assert dest.read_bytes() == b"".join(CHUNK_BYTES)


def test_quick_verify_trusts_marker_but_full_verify_rehashes(chunks, expect, tmp_path):
    dest = tmp_path / "models" / "m.gguf"
    install_model(chunks, dest=dest, **expect)
    st = dest.stat()
    dest.write_bytes(b"Y" * st.st_size)
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime: marker matches
    assert verify_model(False, path=dest, **expect).ok
    full = verify_model(True, path=dest, **expect)
    assert not full.ok
    assert expect["expected_sha256"] in full.problem and full.sha256 in full.problem


def test_verify_of_a_missing_model_says_how_to_install(tmp_path):
    info = verify_model(path=tmp_path / "absent.gguf")
    assert not info.ok and "personafoundry model install" in info.problem


def test_missing_chunk_package_names_it_and_the_pip_command():
    with pytest.raises(ModelError) as err:
        chunk_paths(["personafoundry-no-such-chunk"])
    assert "personafoundry-no-such-chunk" in str(err.value)
    assert "-m pip install personafoundry-no-such-chunk==0.9.0" in str(err.value)


def test_real_chunk_packages_are_located_in_order():
    paths = chunk_paths()
    assert [p.name for p in paths] == [f"part{i:02d}.bin" for i in range(1, 7)]
    assert len(paths) == len(CHUNK_PACKAGES)
    assert sum(p.stat().st_size for p in paths) == MODEL_SIZE


def test_free_port_is_bindable_and_port_open_sees_a_listener():
    port = free_port()
    assert not port_open(port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert port_open(port)


def test_server_command_uses_gguf_template_and_same_thread_counts(tmp_path):
    cmd = server_command(EmbeddedConfig(n_threads=3, n_ctx=2048), tmp_path / "m.gguf", 5123)
    flags = dict(zip(cmd[3::2], cmd[4::2], strict=True))
    assert cmd[1:3] == ["-m", "llama_cpp.server"]
    assert flags["--host"] == "127.0.0.1" and flags["--port"] == "5123"
    assert flags["--n_threads"] == flags["--n_threads_batch"] == "3"
    assert flags["--n_ctx"] == "2048" and "--chat_format" not in flags


def test_server_env_drops_settings_the_server_would_read(monkeypatch):
    monkeypatch.setenv("PORT", "1")
    monkeypatch.setenv("api_key", "secret")
    env = _server_env()
    assert "PORT" not in env and "api_key" not in env and "PATH" in env


def test_state_file_round_trip(tmp_path):
    state = ServerState(123, 123, 8000, "http://127.0.0.1:8000/v1", "alias", "/tmp/x.log")
    write_state(state, tmp_path / "server.json")
    assert read_state(tmp_path / "server.json") == state
    assert read_state(tmp_path / "absent.json") is None


def test_state_of_a_process_that_is_not_our_server_is_stale(tmp_path):
    path = tmp_path / "server.json"
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    for pid in (proc.pid, os.getpid()):  # dead, and alive but not llama_cpp.server
        write_state(ServerState(pid, pid, 1, "http://127.0.0.1:1/v1", "m", "x.log"), path)
        assert detached_state(path) is None
        assert not path.exists()
    assert stop_detached(path) is False


def test_server_that_exits_during_startup_raises_with_log_tail(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONAFOUNDRY_HOME", str(tmp_path))
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file")
    server = EmbeddedServer(EmbeddedConfig(startup_timeout_s=120), model_file=bogus)
    with pytest.raises(ModelError, match="exited during startup") as err:
        server.start()
    assert str(tmp_path / "logs") in str(err.value)
    assert server.proc is None


# --- the real model --------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def _wait_gone(pid: int, timeout: float = 30.0) -> bool:
    """Block until `pid` exits (pidfd readiness, no sleep loop); True if it is gone."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    return not _is_our_server(pid)


@pytest.mark.embedded
@pytest.mark.timeout(600)
def test_real_model_installs_and_verifies():
    path = install_model()
    info = verify_model(full=True)
    assert info.ok and info.path == path
    assert info.sha256 == MODEL_SHA256 and info.size == MODEL_SIZE


@pytest.mark.embedded
@pytest.mark.timeout(600)
def test_server_answers_a_json_schema_chat_and_stops_cleanly():
    import openai

    with EmbeddedServer(EmbeddedConfig(n_ctx=2048)) as srv:
        pid, port = srv.pid, srv.port
        client = openai.OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)
        reply = client.chat.completions.create(
            model=srv.model,
            messages=[{"role": "user", "content": "Invent a person. Reply in JSON."}],
            response_format={"type": "json_object", "schema": SCHEMA},
            temperature=0,
            seed=1,
            max_tokens=80,
        )
        data = json.loads(reply.choices[0].message.content)
        assert isinstance(data["name"], str) and isinstance(data["age"], int)
    assert srv.proc is None
    assert not _is_our_server(pid)
    assert not port_open(port)
    srv.stop()  # idempotent


@pytest.mark.embedded
@pytest.mark.timeout(600)
def test_exception_in_the_context_stops_the_server():
    server = EmbeddedServer(EmbeddedConfig(n_ctx=1024))
    with pytest.raises(RuntimeError, match="boom"), server as srv:
        pid, port = srv.pid, srv.port
        raise RuntimeError("boom")
    assert not _is_our_server(pid) and not port_open(port)


CHILD = """
import signal
from personafoundry.config import EmbeddedConfig
from personafoundry.embedded import EmbeddedServer
with EmbeddedServer(EmbeddedConfig(n_ctx=1024)) as srv:
    print(srv.pid, srv.port, flush=True)
    signal.pause()
"""


@pytest.mark.embedded
@pytest.mark.timeout(600)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_no_orphan_survives_a_killed_parent(sig):
    parent = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        pid, port = map(int, parent.stdout.readline().split())
        assert _is_our_server(pid)
        parent.send_signal(sig)
        parent.wait(timeout=60)
        assert _wait_gone(pid)
        assert not port_open(port)
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.embedded
@pytest.mark.timeout(600)
def test_detached_server_is_found_and_stopped_by_its_state_file(tmp_path):
    path = tmp_path / "server.json"
    state = serve_detached(EmbeddedConfig(n_ctx=1024), path)
    try:
        assert detached_state(path) == state and port_open(state.port)
        assert serve_detached(EmbeddedConfig(n_ctx=1024), path) == state  # already running
    finally:
        assert stop_detached(path) is True
    assert not _is_our_server(state.pid) and not port_open(state.port)
    assert detached_state(path) is None and not path.exists()
