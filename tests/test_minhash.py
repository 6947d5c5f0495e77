"""MinHash signatures, LSH banding and union-find: equal to datasketch, exact where claimed."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from datasketch import LeanMinHash, MinHash, MinHashLSH

from personafoundry import minhash as mh

TEXTS = [
    "The quick brown fox jumps over the lazy dog, again and again, until dusk.",
    "",
    "hi",
    "two words",
    "Ünïcode café — naïve “quoted” text, with ÉCOLE and straße.",
    "我喜欢在东京的公园里散步。今天天气很好！",
    "Привет, как дела? Всё хорошо, спасибо.",
]


def _datasketch(text: str, size: int, num_perm: int = 64, seed: int = 3) -> MinHash:
    m = MinHash(num_perm=num_perm, seed=seed, scheme="affine32", hashfunc=mh.shingle_hash32)
    for shingle in mh.shingles(text, size):
        m.update(shingle)
    return m


@pytest.mark.parametrize("size", [1, 3, 5])
def test_signatures_equal_datasketch_minhash_with_our_hashfunc(size: int) -> None:
    hashes, offsets = mh.shingle_hashes(pa.array(TEXTS), size)
    sigs = mh.signatures(hashes, offsets, 64, 3)
    assert sigs.dtype == np.uint32 and sigs.shape == (len(TEXTS), 64)
    for text, sig in zip(TEXTS, sigs):
        np.testing.assert_array_equal(sig, _datasketch(text, size).hashvalues)


ASCII = [
    "",
    "  Leading and trailing separators...\t\n",
    "Tabs\tnew\nlines, digits 42 and 3.14; a-very-long-hyphenated-wordwithmorethansixteenchars!",
    "",
    "UPPER lower MiXeD",
    "x",
]


def test_ascii_fast_path_equals_the_unicode_path_and_datasketch() -> None:
    fast, fast_offsets = mh.shingle_hashes(pa.array(["pad"] + ASCII).slice(1), 2)
    slow, slow_offsets = mh.shingle_hashes(pa.array(ASCII + ["é"]), 2)
    assert fast_offsets.tolist() == slow_offsets[:-1].tolist()
    np.testing.assert_array_equal(fast, slow[: len(fast)])
    sigs = mh.signatures(fast, fast_offsets, 64, 3)
    for text, sig in zip(ASCII, sigs):
        np.testing.assert_array_equal(sig, _datasketch(text, 2).hashvalues)


def test_signature_loads_into_lean_minhash_and_lsh_query_finds_near_copy() -> None:
    base = " ".join(f"word{i}" for i in range(120))
    texts = [base, base.replace("word50", "other").upper(), "an unrelated short note " * 5]
    hashes, offsets = mh.shingle_hashes(pa.array(texts), 3)
    sigs = mh.signatures(hashes, offsets, 128, 1)
    bands, rows = mh.lsh_params(0.5, 128, 0.99)
    lsh = MinHashLSH(num_perm=128, params=(bands, rows))
    lean = [LeanMinHash(seed=1, hashvalues=s, scheme="affine32") for s in sigs]
    lsh.insert("base", lean[0])
    lsh.insert("other", lean[2])
    assert lsh.query(lean[1]) == ["base"]
    assert lean[0].jaccard(lean[1]) > 0.8
    keys = mh.band_keys(sigs, bands, rows)
    assert mh.candidate_pairs(keys).tolist() == [[0, 1]]


def test_normalisation_ignores_case_punctuation_and_whitespace() -> None:
    a = mh.shingles("Hello,   World! It's  a TEST.", 2)
    b = mh.shingles("hello world it s a test", 2)
    assert a == b == ["hello world", "world it", "it s", "s a", "a test"]


def test_cjk_is_split_into_characters_and_empty_text_has_no_shingles() -> None:
    assert mh.shingles("东京タワー。", 1) == ["东", "京", "タ", "ワ", "ー"]
    assert mh.shingles("", 3) == [] and mh.shingles("  ,;  ", 3) == []
    assert mh.shingles("one two", 3) == ["one two"]


def test_empty_texts_do_not_disturb_their_neighbours() -> None:
    alone, _ = mh.shingle_hashes(pa.array(["a b c d e"]), 3)
    mixed, offsets = mh.shingle_hashes(pa.array(["", "a b c d e", "", "x"]), 3)
    assert offsets.tolist() == [0, 0, 3, 3, 4]
    np.testing.assert_array_equal(mixed[0:3], alone)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 0.8, 0.9])
def test_lsh_params_meet_recall_at_threshold(threshold: float) -> None:
    bands, rows = mh.lsh_params(threshold, 128, 0.95)
    assert bands >= 2 and bands * rows <= 128
    assert mh.candidate_probability(threshold, bands, rows) >= 0.95


def test_candidate_pairs_equal_brute_force_band_equality() -> None:
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 4, size=(60, 8), dtype=np.uint32)  # many accidental collisions
    keys = mh.band_keys(sigs, 4, 2)
    want = {
        (i, j)
        for i in range(60)
        for j in range(i + 1, 60)
        if any((sigs[i, b * 2 : b * 2 + 2] == sigs[j, b * 2 : b * 2 + 2]).all() for b in range(4))
    }
    assert {tuple(p) for p in mh.candidate_pairs(keys).tolist()} == want


def test_exact_jaccard_matches_python_sets() -> None:
    rng = np.random.default_rng(1)
    sets = [set(rng.integers(0, 50, size=int(rng.integers(0, 30))).tolist()) for _ in range(20)]
    hashes = np.concatenate([np.array(list(s), np.uint64) for s in sets] + [np.zeros(0, np.uint64)])
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sets])])
    flat, flat_offsets = mh.unique_sets(hashes, offsets)
    pairs = np.array([(i, j) for i in range(20) for j in range(20)])
    got = mh.exact_jaccard(flat, flat_offsets, pairs, chunk=64)
    want = [len(sets[i] & sets[j]) / len(sets[i] | sets[j]) if sets[i] | sets[j] else 0.0
            for i, j in pairs]  # fmt: skip
    np.testing.assert_allclose(got, want)


def test_connected_components_label_is_smallest_member() -> None:
    rng = np.random.default_rng(2)
    edges = rng.integers(0, 200, size=(150, 2))
    labels = mh.connected_components(200, edges)
    parent = list(range(200))

    def root(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in edges.tolist():
        ra, rb = root(a), root(b)
        parent[max(ra, rb)] = min(ra, rb)
    assert labels.tolist() == [root(i) for i in range(200)]
