"""Few-shot exemplar rotation across the conversation shards of a run, deterministically.

Within one `generate_conversations` call the pool rotates between waves; across shards it
rotates by generations of shards: the shards of a generation run in parallel and all start
from the pool built from the shards of the earlier generations.

Decisions:
- Generations: shard 0 alone, then each generation three times the shards before it
  (sizes 1, 3, 12, 48, ...), so the first accepted conversations join the pool after one
  shard and the stage waits at a generation boundary only about log4(shards) times, while
  the documents, which run alongside in the pipeline, fill the endpoint slots a boundary
  leaves free. The generations depend only on the shard count (pairs and `shard_size`),
  never on the task runner, `parallel_shards` or timing: the tables are the same on every
  runner and on resume.
- Each shard saves, as the `exemplars` part of its checkpoint, its own accepted
  conversations that made its final pool (`ConverseResult.exemplars`). Nothing is lost by
  keeping only those: an exemplar cut from a shard's pool is beaten by `exemplar_pool`
  others that are in the union too. A generation's pool is `converse.rotate_exemplars` over
  the hand-written exemplars and every earlier shard's entries, read back in shard order.
- The pool given to a shard is part of its fingerprint (`flows/shards.py`): when an earlier
  shard is redone with other results, the later shards are redone too. The generations
  also hand on the number of accepted conversations still missing of a `converse.target`
  (`conversation_batches.py`).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from personafoundry.config import ConverseConfig
from personafoundry.converse import ConverseResult, load_exemplars, rotate_exemplars

GROWTH = 4  # shards done after each generation: 1, 4, 16, 64, ...
EXEMPLAR_SCHEMA = pa.schema(
    [
        ("exemplar_id", pa.string()),
        ("source", pa.string()),
        ("scenario", pa.string()),
        ("score", pa.float64()),
        ("turns", pa.list_(pa.struct([("speaker", pa.string()), ("text", pa.string())]))),
    ]
)


def shard_generations(shards: int) -> list[range]:
    """Shard numbers per generation: [0], [1, 3], [4, 15], ... (see the module docstring)."""
    out, start = [], 0
    while start < shards:
        end = min(shards, max(1, start * GROWTH))
        out.append(range(start, end))
        start = end
    return out


def shard_exemplars(result: ConverseResult) -> pa.Table:
    """The shard's own accepted conversations in its final exemplar pool (`EXEMPLAR_SCHEMA`)."""
    accepted = set(result.table.column("conversation_id").to_pylist())
    rows = [
        {k: e.get(k) for k in EXEMPLAR_SCHEMA.names}
        for e in result.exemplars
        if e.get("source") == "run" and e.get("exemplar_id") in accepted
    ]
    return pa.Table.from_pylist(rows, schema=EXEMPLAR_SCHEMA)


def generation_pool(
    earlier: pa.Table | None, cfg: ConverseConfig, seeds: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The pool a generation starts from: the best of the earlier shards' exemplars first,
    then the hand-written ones (`seeds`, default `seeds/exemplars/conversations.jsonl`)."""
    run = earlier.to_pylist() if earlier is not None else []
    return rotate_exemplars(load_exemplars() if seeds is None else seeds, run, cfg.exemplar_pool)
