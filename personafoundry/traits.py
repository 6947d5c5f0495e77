"""Big Five traits for persona skeletons, sampled rather than invented by the LLM.

Decision: each trait is drawn independently from a normal distribution with mean 0.5
and standard deviation 0.10 on the 0-1 scale (T-scores 50 +- 10, divided by 100), clipped to
[0.01, 0.99]. This is a
neutral prior: no Big Five population table ships with the project, so no demographic
correlation (e.g. with age or sex) is claimed; the calibration report's skew section
shows that traits do not vary by group. Existing traits (seed files) are kept.
Deterministic: the draw for a persona depends only on the run seed and its persona_id.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from personafoundry.ids import stable_hash
from schemas.personas import TRAITS, TRAITS_TYPE

MEAN, SD, LOW, HIGH = 0.5, 0.10, 0.01, 0.99


def draw_traits(persona_id: str, rng_seed: int) -> dict[str, float]:
    rng = np.random.default_rng(int(stable_hash([rng_seed, "traits", persona_id]), 16))
    values = np.clip(rng.normal(MEAN, SD, len(TRAITS)), LOW, HIGH).round(3)
    return dict(zip(TRAITS, values.tolist(), strict=True))


def assign_traits(table: pa.Table, *, rng_seed: int) -> pa.Table:
    """Fill null `traits` with sampled Big Five values; keep the ones already present.

    Input/Output columns: `schemas/personas.py` (`persona_id`, `traits`).
    """
    ids = table.column("persona_id").to_pylist()
    current = (
        table.column("traits").to_pylist() if "traits" in table.column_names else [None] * len(ids)
    )
    filled = [t if t else draw_traits(pid, rng_seed) for pid, t in zip(ids, current, strict=True)]
    column = pa.array(filled, type=TRAITS_TYPE)
    if "traits" in table.column_names:
        return table.set_column(table.column_names.index("traits"), "traits", column)
    return table.append_column(pa.field("traits", TRAITS_TYPE), column)
