#!/usr/bin/env python3
"""The project's two set-up commands, needing only Python 3.11 and pip.

    python3 tasks.py demo   # venv + install (project, embedded model) + end-to-end demo
    python3 tasks.py test   # venv + install (project, test extras) + the whole test suite

Decision: a stdlib Python script rather than a Makefile, because a fresh machine is only
promised Python and pip. The venv is `.venv/`; it is reinstalled whenever pyproject.toml
changes (a stamp file holds its hash). Extra arguments go to the underlying command
(`python3 tasks.py test -m "not embedded"`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".personafoundry-installed"


def sh(*cmd: str | Path) -> int:
    print("+", " ".join(map(str, cmd)), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT)


def ensure_env() -> None:
    """Create the venv and install the project with its test extras, once per pyproject."""
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"personafoundry needs Python 3.11; this is {sys.version.split()[0]}.")
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    if not (BIN / "python").exists() and sh(sys.executable, "-m", "venv", VENV):
        sys.exit("could not create .venv; check that the python3.11 venv module is installed.")
    steps = [
        (BIN / "python", "-m", "pip", "install", "--upgrade", "pip"),
        (BIN / "python", "-m", "pip", "install", "-e", ".[test]"),
    ]
    for step in steps:
        if sh(*step):
            sys.exit("installation failed (see pip's output above).")
    STAMP.write_text(want)


def demo(args: list[str]) -> int:
    ensure_env()
    if sh(BIN / "personafoundry", "model", "install"):
        return 1
    return sh(BIN / "personafoundry", "run", "--config", "configs/demo.toml", *args)


def test(args: list[str]) -> int:
    ensure_env()
    code = sh(BIN / "python", "-m", "pytest", *args)
    if code == 5:
        print("pytest collected no tests: failing on purpose.", file=sys.stderr)
        return 1
    return code


def main() -> int:
    commands = {"demo": demo, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
