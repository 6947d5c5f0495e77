#!/usr/bin/env python3
"""The project's two set-up commands, needing only Python 3.11 and pip.

    python3 tasks.py demo   # venv + install (project, embedded model) + end-to-end demo
    python3 tasks.py test   # venv + install (project, test extras) + the whole test suite

Decision: a stdlib Python script rather than a Makefile, because a fresh machine is only
promised Python and pip. The venv is `.venv/`; it is reinstalled whenever pyproject.toml
changes (a stamp file holds its hash). Extra arguments go to the underlying command
(`python3 tasks.py test -m "not embedded"`).

`test` also installs Debian's `chromium` when `/usr/bin/chromium` is missing, `apt-get`
exists and we run as root (`apt-get update` only if the install fails without it): the
dataset-report test renders `report.html` in headless Chromium and fails without it,
unless PERSONAFOUNDRY_NO_CHROMIUM=1 is set.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".personafoundry-installed"
CHROMIUM = Path("/usr/bin/chromium")


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


def ensure_chromium() -> None:
    """Install Debian's chromium for the report render test, when missing and possible."""
    if CHROMIUM.exists() or os.environ.get("PERSONAFOUNDRY_NO_CHROMIUM") == "1":
        return
    apt = shutil.which("apt-get")
    consequence = (
        "tests/test_report.py's headless render test will fail; install Debian's chromium "
        "or set PERSONAFOUNDRY_NO_CHROMIUM=1 to skip it."
    )
    if not apt or os.geteuid() != 0:
        why = "apt-get is not available" if not apt else "not running as root"
        print(f"chromium: {CHROMIUM} is missing and {why}; {consequence}", file=sys.stderr)
        return
    print(f"chromium: {CHROMIUM} is missing; installing Debian's chromium with apt-get", flush=True)
    os.environ.setdefault("DEBIAN_FRONTEND", "noninteractive")
    install = (apt, "install", "-y", "--no-install-recommends", "chromium")
    if sh(*install) == 0:
        return
    print("chromium: install failed; refreshing the package lists and retrying", flush=True)
    if sh(apt, "update") or sh(*install):
        print(f"chromium: apt-get could not install it (output above); {consequence}",
              file=sys.stderr)  # fmt: skip


def test(args: list[str]) -> int:
    ensure_env()
    ensure_chromium()
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
