"""Names unique within a release: repeated full names are redrawn, not dropped.

Enrichment runs in shards that each see only their own names, so uniqueness is settled
before it, on the skeletons: `sample_unique_names` for a census sample,
`unique_table_names` for the seed loader, `unique_skeleton_names` for census + seed rows.

Decisions:
- A row repeating a name redraws from its own sex/decade/race distribution
  (`personafoundry.names`), so common full names are in effect drawn without replacement.
  Measured at 1M census rows: about 20% of first draws repeat a name (the race-reweighted
  heads such as "Maria Garcia" are heavy); 15 rounds over ever fewer rows settle them,
  adding about 0.3 s to the 1M sample.
- Precedence: a `fixed` row (a name a seed file gives, or any seed row against census rows)
  keeps its name; otherwise the earlier row keeps it. Fixed rows repeating each other are
  the caller's to report (the seed loader makes them bad rows).
- Equality is exact string equality of the full name, computed as int64 codes (first-name
  id x surnames + surname id) so the 1M-row check is a sort, not a hash of strings.
- After MAX_ROUNDS a row still repeating a name is returned in a mask (never seen in
  practice); callers drop it with a reason.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from personafoundry.names import draw_codes, join_names, name_arrays
from personafoundry.rules import load_rules

log = logging.getLogger(__name__)

MAX_ROUNDS = 200  # redraw rounds over repeating names; each round only draws the repeats
NAMES_STREAM = 0x6E616D65  # "name": the generator stream of `unique_table_names`


@lru_cache(maxsize=1)
def _name_ids() -> tuple[np.ndarray, pa.Array, np.ndarray, pa.Array]:
    """One id per distinct first-name string (the same name recurs across (decade, sex)
    lists) and per surname, so a full name is one int64: first id x surnames + surname id."""
    _, firsts, surnames = name_arrays()
    f, s = firsts.dictionary_encode(), surnames.dictionary_encode()
    to_np = lambda a: a.indices.to_numpy().astype(np.int64)
    return to_np(f), f.dictionary, to_np(s), s.dictionary


def name_keys(names: pa.Array) -> np.ndarray:
    """An int64 per name, equal exactly when the strings are equal: the code of a table name,
    or a negative number per distinct other string (a name a seed file gives); each null
    gets a negative number of its own (a null repeats nothing)."""
    _, f_uni, _, s_uni = _name_ids()
    parts = pc.extract_regex(names, r"^(?P<first>[^ ]+) (?P<last>[^ ]+)$")
    fi = pc.index_in(pc.struct_field(parts, "first"), value_set=f_uni)
    si = pc.index_in(pc.struct_field(parts, "last"), value_set=s_uni)
    known = pc.and_(pc.is_valid(fi), pc.is_valid(si)).to_numpy(zero_copy_only=False)
    f_np = fi.fill_null(0).to_numpy().astype(np.int64)
    keys = f_np * len(s_uni) + si.fill_null(0).to_numpy().astype(np.int64)
    if not known.all():
        encoded = pc.dictionary_encode(names)
        nulls = -1 - len(encoded.dictionary) - np.arange(len(names), dtype=np.int64)
        other = encoded.indices.fill_null(-1).to_numpy().astype(np.int64)
        keys = np.where(known, keys, np.where(other >= 0, -1 - other, nulls))
    return keys


def _repeats(keys: np.ndarray, fixed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose key an earlier row has, fixed rows first (a fixed row never repeats),
    and the sorted distinct keys."""
    order = np.argsort(~fixed, kind="stable") if fixed.any() else np.arange(len(keys))
    distinct, at = np.unique(keys[order], return_index=True)
    repeat = np.ones(len(keys), dtype=bool)
    repeat[order[at]] = False
    return repeat & ~fixed, distinct


def _is_in(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(sorted_keys, keys)
    hit = pos < len(sorted_keys)
    hit[hit] = sorted_keys[pos[hit]] == keys[hit]
    return hit


def sample_unique_names(
    sex: np.ndarray,
    age: np.ndarray,
    race: np.ndarray,
    race_labels: tuple[str, ...],
    reference_year: int,
    rng: np.random.Generator,
    *,
    names: pa.Array | None = None,
    fixed: np.ndarray | None = None,
) -> tuple[pa.Array, np.ndarray]:
    """Full names unique across the rows, and a mask of rows still repeating a name.

    Draws every name (or starts from `names`), then redraws each repeat from its own
    sex/decade/race distribution, in rounds over the repeats only, until none is left or
    MAX_ROUNDS pass. A `fixed` row (a name a seed file gives) keeps its name and wins over
    any drawn row; fixed rows repeating each other are the caller's to report. A null in
    `names` is drawn unless fixed.
    """
    n = len(sex)
    fixed = np.zeros(n, dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    f_id, _, s_id, s_uni = _name_ids()
    if names is None:
        first, last = draw_codes(sex, age, race, race_labels, reference_year, rng)
        keys = f_id[first] * len(s_uni) + s_id[last]
    else:
        first, last, keys = np.full(n, -1), np.full(n, -1), name_keys(names)
    repeat, taken = _repeats(keys, fixed)
    if names is not None:
        repeat |= names.is_null().to_numpy(zero_copy_only=False) & ~fixed
    rows = np.flatnonzero(repeat)
    for _ in range(MAX_ROUNDS):
        if not len(rows):
            break
        f, s = draw_codes(sex[rows], age[rows], race[rows], race_labels, reference_year, rng)
        k = f_id[f] * len(s_uni) + s_id[s]
        ok = np.zeros(len(rows), dtype=bool)
        ok[np.unique(k, return_index=True)[1]] = True  # the first of equal new draws
        ok &= ~_is_in(taken, k)
        first[rows[ok]], last[rows[ok]] = f[ok], s[ok]
        new = np.sort(k[ok])
        taken = np.insert(taken, np.searchsorted(taken, new), new)
        rows = rows[~ok]
    unresolved = np.zeros(n, dtype=bool)
    unresolved[rows] = True
    if names is None:
        return join_names(first, last), unresolved
    drawn = first >= 0
    if not drawn.any():
        return names, unresolved
    return pc.replace_with_mask(
        names, pa.array(drawn), join_names(first[drawn], last[drawn])
    ), unresolved


def unique_skeleton_names(table: pa.Table, *, rng_seed: int) -> pa.Table:
    """The skeleton table (census + seed rows) with every name used by one row only.

    Seed rows keep their names (given by the file, or drawn unique by the seed loader); a
    census row whose name a seed row or an earlier census row has redraws from its own
    sex/decade/race distribution. Enrichment runs in shards, each seeing only its own
    names, so uniqueness is settled here, before them. A census row left repeating a name
    (see MAX_ROUNDS; not seen in practice) is logged and left to the `name` expectation.

    Input/output columns: `schemas/personas.py` (only `name` changes).
    """
    names = table["name"].combine_chunks()
    seed = pc.fill_null(pc.equal(table["source"].combine_chunks(), "seed"), False)
    fixed = pc.or_(seed, pc.is_null(names)).to_numpy(zero_copy_only=False)
    out, unresolved = unique_table_names(table, fixed, rng_seed=rng_seed)
    if unresolved.any():
        log.warning("names: %d census rows still repeat a name", int(unresolved.sum()))
    return out


def unique_table_names(
    table: pa.Table, fixed: np.ndarray, *, rng_seed: int
) -> tuple[pa.Table, np.ndarray]:
    """`table` (persona columns) with repeated names of non-`fixed` rows redrawn, and a mask
    of rows still repeating one. Redraws come from a generator seeded by `rng_seed`."""
    names = table["name"].combine_chunks()
    fixed = np.asarray(fixed, dtype=bool) | names.is_null().to_numpy(zero_copy_only=False)
    no_repeats = np.zeros(table.num_rows, dtype=bool)
    if pc.count_distinct(names).as_py() == len(names) - names.null_count:  # hash, no parsing
        return table, no_repeats
    if not _repeats(name_keys(names), fixed)[0].any():  # repeats among nulls/fixed rows only
        return table, no_repeats
    race = pc.dictionary_encode(pc.fill_null(table["race_ethnicity"].combine_chunks(), ""))
    out, unresolved = sample_unique_names(
        pc.fill_null(table["sex"], "").to_numpy(zero_copy_only=False),
        pc.fill_null(table["age"], 0).to_numpy().astype(np.int64),
        race.indices.to_numpy(zero_copy_only=False),
        tuple(race.dictionary.to_pylist()),
        load_rules().reference_year,
        np.random.default_rng(np.random.SeedSequence([rng_seed, NAMES_STREAM])),
        names=names,
        fixed=fixed,
    )
    i = table.schema.get_field_index("name")
    return table.set_column(i, table.schema.field(i), out), unresolved
