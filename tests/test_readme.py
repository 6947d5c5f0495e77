"""The README stays true: its two commands, `.ci/run`, and every CLI command documented."""

from __future__ import annotations

import re

import typer.main

from personafoundry.cli import app
from personafoundry.paths import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    block = re.search(r"```bash\n(.*?)```", README, re.DOTALL).group(1)
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["python3 tasks.py demo", "python3 tasks.py test"]


def test_ci_runs_exactly_the_readme_test_command():
    lines = (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
    assert lines[-1] == "exec python3 tasks.py test"


def cli_commands() -> list[str]:
    """Every command path of the CLI, e.g. `model install`, `release cut`."""
    group = typer.main.get_command(app)
    paths = []
    for name, cmd in group.commands.items():
        if getattr(cmd, "hidden", False):
            continue
        sub = getattr(cmd, "commands", None)
        if sub:
            paths += [f"{name} {s}" for s, c in sub.items() if not getattr(c, "hidden", False)]
        else:
            paths.append(name)
    return paths


def test_every_cli_command_is_documented():
    flat = re.sub(r"\s+", " ", README)
    missing = []
    for path in cli_commands():
        group, _, sub = path.partition(" ")
        pattern = (
            rf"personafoundry {group}\b" if not sub else rf"personafoundry {group} [^`\n]*\b{sub}\b"
        )
        if not re.search(pattern, flat):
            missing.append(path)
    assert not missing, f"README does not mention: {missing}"
    assert len(cli_commands()) >= 10
