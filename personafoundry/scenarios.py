"""The scenario catalog (`seeds/scenarios.toml`): situations a pair of personas talk in.

Decisions:
- A scenario has `{a}` / `{b}` name slots and eligibility rules: `min_age` for both,
  `same_state`, `employed` (both have an occupation). A malformed entry is a
  `SeedFileError` naming it, raised when the catalog is loaded.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personafoundry.errors import SeedFileError
from personafoundry.paths import SEEDS_DIR

SCENARIOS_PATH = SEEDS_DIR / "scenarios.toml"


@dataclass(frozen=True)
class Scenario:
    """A situation from the catalog; `setting` has `{a}` / `{b}` name slots."""

    scenario_id: str
    title: str
    setting: str
    min_age: int = 0
    same_state: bool = False
    employed: bool = False

    def text(self, name_a: str, name_b: str) -> str:
        return self.setting.format(a=name_a, b=name_b)


def load_scenarios(path: Path = SCENARIOS_PATH) -> list[Scenario]:
    """Read the scenario catalog; a malformed entry raises `SeedFileError` naming it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise SeedFileError(f"{path}: cannot read the scenario catalog ({err}); fix it.") from None
    out = []
    for i, item in enumerate(data.get("scenario", []), 1):
        try:
            scenario = Scenario(
                scenario_id=item["id"], title=item["title"], setting=item["setting"],
                min_age=int(item.get("min_age", 0)), same_state=bool(item.get("same_state")),
                employed=bool(item.get("employed")),
            )  # fmt: skip
            scenario.text("A", "B")
        except (KeyError, ValueError, IndexError) as err:
            raise SeedFileError(
                f"{path}: scenario #{i} is invalid ({err!r}); it needs id, title and a "
                "setting with only {a} and {b} slots."
            ) from None
        out.append(scenario)
    if not out:
        raise SeedFileError(f"{path}: no [[scenario]] entries; add at least one.")
    return out


def eligible(scenario: Scenario, p: dict[str, Any], q: dict[str, Any]) -> bool:
    if any(x["age"] is not None and x["age"] < scenario.min_age for x in (p, q)):
        return False
    if scenario.same_state and (p["state"] is None or p["state"] != q["state"]):
        return False
    return not (scenario.employed and not (p["employed"] and q["employed"]))
