"""The dedup stage: planted near-duplicates go, distinct rows stay, every removal is explained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from personafoundry.config import DedupConfig
from personafoundry.dedup import DedupIndex, dedup_table, load_index, save_index, table_text
from personafoundry.errors import ConfigError
from schemas.duplicates import SCHEMA as DUPLICATES

CRITIC = pa.list_(
    pa.struct([("expert", pa.string()), ("score", pa.float64()), ("passed", pa.bool_())])
)
VOCAB = [f"w{i}" for i in range(3000)]


def _text(rng: np.random.Generator, n: int = 120) -> list[str]:
    return [VOCAB[i] for i in rng.integers(0, len(VOCAB), size=n)]


def _edit(rng: np.random.Generator, words: list[str], rate: float) -> list[str]:
    out = list(words)
    for pos in rng.choice(len(out), size=max(1, round(rate * len(out))), replace=False):
        out[pos] = VOCAB[int(rng.integers(0, len(VOCAB)))]
    return out


def _docs(ids: list[str], bodies: list[str], scores: list[float | None]) -> pa.Table:
    critic = [[] if s is None else [{"expert": "e", "score": s, "passed": True}] for s in scores]
    return pa.table({"document_id": ids, "title": ["note"] * len(ids), "body": bodies,
                     "critic_scores": pa.array(critic, CRITIC)})  # fmt: skip


def _corpus(seed: int = 0) -> tuple[pa.Table, dict[str, str]]:
    """30 distinct documents plus 10 near-copies (1-5 % edits, case and punctuation changes)."""
    rng = np.random.default_rng(seed)
    originals = [_text(rng) for _ in range(30)]
    ids = [f"doc_{i:016x}" for i in range(40)]
    bodies = [" ".join(w) for w in originals]
    copy_of = {}
    for j in range(10):
        copy = _edit(rng, originals[j], [0.01, 0.03, 0.05][j % 3])
        bodies.append(", ".join(copy).upper() + "!")
        copy_of[ids[30 + j]] = ids[j]
    scores = [float(s) for s in rng.integers(1, 6, size=40)]
    return _docs(ids, bodies, scores), copy_of


@pytest.mark.parametrize("verify", ["exact", "estimated"])
def test_planted_near_duplicates_found_and_distinct_documents_kept(verify: str) -> None:
    table, copy_of = _corpus()
    result = dedup_table(table, DedupConfig(verify=verify), table_name="documents")
    pairs = {frozenset(p) for p in zip(result.duplicates["item_id"].to_pylist(),
                                       result.duplicates["kept_id"].to_pylist())}  # fmt: skip
    assert pairs == {frozenset(p) for p in copy_of.items()}
    assert result.table.num_rows == 30 and result.stats["duplicates"] == 10


def test_duplicates_table_explains_every_removed_row() -> None:
    table, _ = _corpus(1)
    result = dedup_table(table, DedupConfig(), table_name="documents")
    dups = result.duplicates
    assert dups.schema.equals(DUPLICATES.arrow_schema(), check_metadata=False)
    kept, removed = set(result.table["document_id"].to_pylist()), set(dups["item_id"].to_pylist())
    assert removed == set(table["document_id"].to_pylist()) - kept
    assert set(dups["kept_id"].to_pylist()) <= kept
    assert set(dups["reason"].to_pylist()) == {"near_duplicate"}
    assert min(dups["similarity"].to_pylist()) >= DedupConfig().threshold
    assert result.dropped["document_id"].to_pylist() == dups["item_id"].to_pylist()


def test_kept_member_is_best_scored_with_smallest_id_on_ties() -> None:
    body = "the same receipt for milk eggs bread and coffee at the corner shop " * 3
    ids = [
        "doc_0000000000000003",
        "doc_0000000000000001",
        "doc_0000000000000002",
        "doc_0000000000000004",
    ]
    table = _docs(ids, [body, body.upper(), body + " thanks", body], [4.0, 4.0, 2.0, None])
    result = dedup_table(table, DedupConfig(), table_name="documents")
    assert result.table["document_id"].to_pylist() == ["doc_0000000000000001"]
    assert set(result.duplicates["kept_id"].to_pylist()) == {"doc_0000000000000001"}
    assert len(set(result.duplicates["cluster_id"].to_pylist())) == 1


def test_same_input_in_any_row_order_gives_the_same_result() -> None:
    table, _ = _corpus(2)
    cfg = DedupConfig(chunk_rows=7)
    first = dedup_table(table, cfg, table_name="documents")
    order = np.random.default_rng(5).permutation(table.num_rows)
    second = dedup_table(table.take(pa.array(order)), cfg, table_name="documents")

    def rows(r):
        return sorted(zip(*(r.duplicates[c].to_pylist() for c in r.duplicates.column_names)))

    assert rows(first) == rows(second)
    assert first.stats == second.stats


def test_index_round_trip_and_cross_release_dedup_keeps_cluster_ids(tmp_path: Path) -> None:
    table, _ = _corpus(3)
    cfg = DedupConfig()
    first = dedup_table(table, cfg, table_name="documents")
    save_index(first.index, tmp_path / "v1")
    index = load_index(tmp_path / "v1")
    assert index.params == first.index.params and index.entries.equals(first.index.entries)
    old_cluster = dict(zip(first.duplicates["kept_id"].to_pylist(),
                           first.duplicates["cluster_id"].to_pylist()))  # fmt: skip
    kept_id = first.duplicates["kept_id"][0].as_py()
    kept_body = table.filter(pa.compute.equal(table["document_id"], kept_id))["body"][0].as_py()
    singleton = first.table["document_id"][-1].as_py()
    single_body = table.filter(pa.compute.equal(table["document_id"], singleton))["body"][0]
    new = _docs(
        [kept_id, "doc_00000000000000aa", "doc_00000000000000bb", "doc_00000000000000cc"],
        [kept_body, kept_body + " extra", single_body.as_py().lower(), "a brand new note " * 9],
        [1.0, 5.0, 5.0, 3.0],
    )
    second = dedup_table(new, cfg, table_name="documents", index=index)
    got = {r["item_id"]: r for r in second.duplicates.to_pylist()}
    assert set(got) == {"doc_00000000000000aa", "doc_00000000000000bb"}
    assert got["doc_00000000000000aa"]["kept_id"] == kept_id
    assert got["doc_00000000000000aa"]["cluster_id"] == old_cluster[kept_id]
    assert got["doc_00000000000000bb"]["kept_id"] == singleton
    assert second.stats["carried_over"] == 1 and second.stats["duplicates_of_earlier_releases"] == 2
    assert second.table["document_id"].to_pylist() == [kept_id, "doc_00000000000000cc"]
    assert len(second.index) == len(index) + 3  # the carried-over item is not indexed twice
    third = dedup_table(new.slice(1, 1), cfg, table_name="documents", index=second.index)
    assert third.duplicates["cluster_id"].to_pylist() == [old_cluster[kept_id]]


def test_empty_and_tiny_texts() -> None:
    table = _docs([f"doc_{i:016x}" for i in range(5)], ["", "", "ok", "OK!", None], [1.0] * 5)
    table = table.set_column(1, "title", pa.array([None] * 5, pa.string()))
    result = dedup_table(table, DedupConfig(), table_name="documents")
    assert result.duplicates["item_id"].to_pylist() == ["doc_0000000000000003"]
    assert result.stats["empty_texts"] == 3 and result.table.num_rows == 4


def test_non_english_near_copies_are_found() -> None:
    zh = "我们今天早上在公园里散步，看到很多人在打太极拳，天气非常好，空气也很新鲜。" * 2
    ru = "Сегодня утром мы гуляли в парке и видели много людей, погода была прекрасной. " * 3
    bodies = [
        zh,
        zh.replace("公园", "花园", 1),
        ru,
        ru.upper(),
        "completely unrelated english text " * 4,
    ]
    table = _docs([f"doc_{i:016x}" for i in range(5)], bodies, [5.0, 1.0, 5.0, 1.0, 3.0])
    result = dedup_table(table, DedupConfig(), table_name="documents")
    assert sorted(result.duplicates["item_id"].to_pylist()) == [
        "doc_0000000000000001",
        "doc_0000000000000003",
    ]


def test_conversation_and_persona_text_comes_from_nested_fields() -> None:
    turns = pa.array(
        [[{"speaker_id": "a", "text": "Hi there"}, {"speaker_id": "b", "text": None}], None]
    )
    conv = pa.table({"conversation_id": ["c1", "c2"], "turns": turns})
    assert table_text(conv, ["turns.text"]).to_pylist() == ["Hi there\n", ""]
    facts = pa.array([[{"fact_id": "f", "category": "c", "statement": "I own a cat."}]])
    personas = pa.table({"persona_id": ["p"], "narrative": ["I am Ana."], "facts": facts})
    assert table_text(personas, ["narrative", "facts.statement"]).to_pylist() == [
        "I am Ana.\nI own a cat."
    ]


def test_config_mismatches_are_reported() -> None:
    table, _ = _corpus()
    with pytest.raises(ConfigError, match="body_text"):
        dedup_table(table, DedupConfig(), table_name="documents", text_fields=["body_text"])
    with pytest.raises(ConfigError, match="num_perm"):
        dedup_table(table, DedupConfig(), table_name="documents",
                    index=DedupIndex.empty(DedupConfig(num_perm=64)))  # fmt: skip


def test_index_built_with_another_threshold_is_rebanded_not_recomputed() -> None:
    table, _ = _corpus(4)
    first = dedup_table(table.slice(0, 35), DedupConfig(threshold=0.8), table_name="documents")
    second = dedup_table(table.slice(35), DedupConfig(), table_name="documents", index=first.index)
    assert second.index.params["bands"] != first.index.params["bands"]
    assert second.stats["duplicates_of_earlier_releases"] == 5


def test_empty_table_gives_empty_outputs() -> None:
    table = _docs([], [], [])
    result = dedup_table(table, DedupConfig(), table_name="documents")
    assert result.table.num_rows == result.duplicates.num_rows == len(result.index) == 0
