"""MinHash signatures, LSH banding and union-find, vectorised over Arrow text arrays.

Decisions:
- Normalisation runs as Arrow kernels, never per row in Python: NFKC, Unicode lower case,
  and every character outside letters/digits is a separator (ASCII punctuation and
  whitespace, U+0080-U+00BF, General Punctuation U+2000-U+206F, CJK punctuation
  U+3000-U+303F). Kana and CJK ideographs become one token each, because those scripts
  do not put spaces between words; Thai, Lao, Khmer and Myanmar are not segmented (a run of
  them is one token), a known limitation.
- Shingles are word n-grams; a text with fewer than n words is one shingle of all its
  words; a text without words has no shingles and is never anyone's duplicate.
- Hashes: a word hashes its UTF-8 bytes (length, then 8-byte little-endian blocks, each
  folded through the MurmurHash3 64-bit finaliser; stable across processes, unlike `hash`);
  an n-gram folds its word hashes with a multiply-add and the same finaliser, and MinHash
  sees its low 32 bits (`shingle_hash32`). All-ASCII blocks are tokenised and hashed
  straight from the Arrow byte buffer (same words, no strings built).
- Signatures use datasketch 2.0's default "affine32" permutations bit for bit:
  `MinHash(num_perm, seed, scheme="affine32", hashfunc=shingle_hash32)` updated with
  `shingles(text, n)` has the same `hashvalues` as our row, so users keep the datasketch API
  (`LeanMinHash`, `MinHashLSH(params=(bands, rows))`). We apply them to a block of shingles
  at once as a (num_perm, block) uint32 matrix reduced per text with `np.minimum.reduceat`.
- LSH bands: among all (b, r) with b * r <= num_perm, the one with the smallest
  false-candidate area (integral of P(candidate | s) below the threshold) that still makes
  a pair at exactly the threshold a candidate with probability >= `min_recall`.
- Candidate pairs: every pair inside a bucket of at most MAX_BUCKET members; in a larger
  bucket (mass duplication) each member pairs with its sorted neighbour and with the
  bucket's first member, which keeps the clusters connected with O(n) pairs.
- Union-find is vectorised (min-label hooking plus pointer jumping); a component's label is
  its smallest row index, so results never depend on chunk or thread order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MAX_BUCKET = 64
BLOCK_SHINGLES = 16_384  # (num_perm x block) uint32 matrix of 8 MiB: fits in cache-ish memory
EMPTY32 = np.uint32(0xFFFFFFFF)  # datasketch's empty value; also our "no shingles" marker
_MASK64 = (1 << 64) - 1
_FOLD = np.uint64(0x9E3779B97F4A7C15)
_LEN_MUL = 0xC2B2AE3D27D4EB4F
_LOW_BYTES = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [_MASK64], np.uint64)
_ASCII_LOWER = np.arange(256, dtype=np.uint8)
_ASCII_LOWER[65:91] += 32
_ASCII_WORD = np.zeros(256, bool)
_ASCII_WORD[48:58] = _ASCII_WORD[97:123] = True
_SEPARATORS = r"[^ 0-9a-z\x{C0}-\x{1FFF}\x{2070}-\x{2FFF}\x{3040}-\x{10FFFF}]+"
_CHAR_TOKENS = r"([\x{3040}-\x{30FF}\x{3400}-\x{4DBF}\x{4E00}-\x{9FFF}\x{F900}-\x{FAFF}])"


def tokenize(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Normalised words of every text: a flat string array and int64 offsets (n + 1)."""
    t = pc.utf8_lower(pc.utf8_normalize(_large(texts), form="NFKC"))
    t = pc.replace_substring_regex(t, _SEPARATORS, " ")
    t = pc.replace_substring_regex(t, _CHAR_TOKENS, r" \1 ")
    lists = pc.ascii_split_whitespace(t)
    offsets = lists.offsets.to_numpy().astype(np.int64)
    words = lists.values.slice(offsets[0], offsets[-1] - offsets[0])
    offsets -= offsets[0]
    keep = pc.binary_length(words).to_numpy() > 0  # the split leaves "" at the ends
    if not keep.all():
        offsets = np.concatenate([[0], np.cumsum(keep)])[offsets]
        words = words.filter(pa.array(keep))
    return words, offsets


def _large(texts: pa.Array) -> pa.Array:
    return pc.fill_null(texts.cast(pa.large_string()), "")


def _buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(int64 offsets, uint8 bytes) of a large_string array, honouring its slice offset."""
    offsets = np.frombuffer(arr.buffers()[1], np.int64)[arr.offset : arr.offset + len(arr) + 1]
    buf = arr.buffers()[2]
    return offsets, np.frombuffer(buf, np.uint8) if buf is not None else np.zeros(0, np.uint8)


def _hash_spans(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """uint64 hash of byte spans: the length, then each 8-byte little-endian block, folded
    through fmix64. One unaligned 8-byte gather per block, so words of <= 8 bytes cost one."""
    padded = np.concatenate([data, np.zeros(8, np.uint8)])
    at = np.ndarray((len(data) + 1,), dtype="<u8", buffer=padded.data, strides=(1,))
    h = lengths.astype(np.uint64) * np.uint64(_LEN_MUL)
    h = _fmix64(h ^ (at[starts] & _LOW_BYTES[np.minimum(lengths, 8)]))  # an empty span gives 0
    active, block = np.flatnonzero(lengths > 8), 1
    while len(active):
        left = np.minimum(lengths[active] - 8 * block, 8)
        data64 = at[starts[active] + 8 * block] & _LOW_BYTES[left]
        h[active] = _fmix64(h[active] ^ data64)
        block += 1
        active = active[lengths[active] > 8 * block]
    return h


def _hash_word(word: str) -> int:
    """`_hash_spans` of one word, in plain Python (the reference for datasketch users)."""
    data = word.encode()
    h = (len(data) * _LEN_MUL) & _MASK64
    for i in range(0, max(len(data), 1), 8):
        block = int.from_bytes(data[i : i + 8], "little")
        h = int(_fmix64(np.array([h ^ block], np.uint64))[0])
    return h


def _word_hashes(words: pa.Array) -> np.ndarray:
    """uint64 hash per word; each distinct word of the block is hashed once."""
    if len(words) == 0:
        return np.zeros(0, np.uint64)
    enc = pc.dictionary_encode(words)
    offsets, data = _buffers(enc.dictionary.cast(pa.large_string()))
    table = _hash_spans(data, offsets[:-1], np.diff(offsets))
    return table[enc.indices.to_numpy()]


def _ascii_word_hashes(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """`_word_hashes(tokenize(texts))` for all-ASCII texts, straight from the bytes.

    A word is a maximal run of [0-9A-Za-z] inside one text, lower-cased: what `tokenize`
    yields on ASCII, without building strings (about 3x faster).
    """
    offsets, data = _buffers(texts)
    low = _ASCII_LOWER[data[offsets[0] : offsets[-1]]]
    offsets = offsets - offsets[0]
    word = _ASCII_WORD[low]
    first = word.copy()
    first[1:] &= ~word[:-1]
    last = word.copy()
    last[:-1] &= ~word[1:]
    text_starts, text_ends = offsets[:-1], offsets[1:] - 1
    text_starts = text_starts[text_starts < len(word)]
    text_ends = text_ends[text_ends >= 0]
    first[text_starts] = word[text_starts]  # words never run across texts
    last[text_ends] = word[text_ends]
    starts, ends = np.flatnonzero(first), np.flatnonzero(last) + 1
    counts = np.bincount(np.searchsorted(offsets, starts, side="right") - 1, minlength=len(texts))
    return _hash_spans(low, starts, ends - starts), np.concatenate([[0], np.cumsum(counts)])


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def shingle_hashes(texts: pa.Array, size: int) -> tuple[np.ndarray, np.ndarray]:
    """uint64 hash of every word `size`-gram of every text (flat) and int64 offsets (n + 1)."""
    texts = _large(texts)
    if pc.all(pc.string_is_ascii(texts)).as_py() is not False:
        wh, offsets = _ascii_word_hashes(texts)
    else:
        words, offsets = tokenize(texts)
        wh = _word_hashes(words)
    wh = np.concatenate([wh, np.zeros(size, np.uint64)])
    n_words = len(wh) - size
    acc = wh[: n_words + 1].copy()  # window starting at every word, across text ends
    for j in range(1, size):
        acc = acc * _FOLD + wh[j : n_words + 1 + j]
    lengths = np.diff(offsets)
    keep = np.ones(n_words + 1, bool)
    keep[-1] = False
    ends, starts = offsets[1:][lengths > 0], offsets[:-1][lengths > 0]
    for j in range(1, size):  # a window must end inside its own text
        keep[np.maximum(ends - j, starts)] = False
    short = np.flatnonzero((lengths > 0) & (lengths < size))
    if len(short):  # one shingle of all its words
        first = offsets[short]
        part = wh[first]
        for j in range(1, size):
            part = np.where(j < lengths[short], part * _FOLD + wh[first + j], part)
        acc[first], keep[first] = part, True
    counts = np.where(lengths >= size, lengths - size + 1, (lengths > 0).astype(np.int64))
    return _fmix64(acc[keep]), np.concatenate([[0], np.cumsum(counts)])


def shingles(text: str, size: int) -> list[str]:
    """The shingles of one text as strings (words joined by a space), for datasketch users."""
    words, _ = tokenize(pa.array([text]))
    w = words.to_pylist()
    if len(w) < size:
        return [" ".join(w)] if w else []
    return [" ".join(w[i : i + size]) for i in range(len(w) - size + 1)]


def shingle_hash32(shingle: str) -> int:
    """The 32-bit hash our signatures use for a shingle string: pass it as datasketch hashfunc."""
    acc = 0
    for i, word in enumerate(shingle.split(" ")):
        acc = _hash_word(word) if i == 0 else (acc * int(_FOLD) + _hash_word(word)) & _MASK64
    return int(_fmix64(np.array([acc], np.uint64))[0]) & 0xFFFFFFFF


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters (a, b) for this seed, as uint32 arrays."""
    from datasketch import MinHash  # imported lazily: only this reads its RNG stream

    a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    return a.astype(np.uint32), b.astype(np.uint32)


def _blocks(starts: np.ndarray, ends: np.ndarray) -> Iterator[tuple[int, int]]:
    """Split consecutive texts into runs of about BLOCK_SHINGLES shingles (>= 1 text each)."""
    i = 0
    while i < len(starts):
        j = max(i + 1, int(np.searchsorted(ends, starts[i] + BLOCK_SHINGLES, side="right")))
        yield i, j
        i = j


def signatures(hashes: np.ndarray, offsets: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """MinHash signature per text, (n, num_perm) uint32; a text without shingles is all EMPTY32."""
    a, b = permutations(num_perm, seed)
    hv = _fmix32((hashes & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    n = len(offsets) - 1
    out = np.full((num_perm, n), EMPTY32, np.uint32)
    docs = np.flatnonzero(np.diff(offsets) > 0)
    starts, ends = offsets[docs], offsets[docs + 1]
    for i, j in _blocks(starts, ends):
        lo, hi = int(starts[i]), int(ends[j - 1])
        if j - i == 1 and hi - lo > BLOCK_SHINGLES:  # one long text: min over sub-blocks
            for s in range(lo, hi, BLOCK_SHINGLES):
                m = a[:, None] * hv[None, s : s + BLOCK_SHINGLES] + b[:, None]
                out[:, docs[i]] = np.minimum(out[:, docs[i]], m.min(axis=1))
            continue
        m = a[:, None] * hv[None, lo:hi]
        m += b[:, None]
        out[:, docs[i:j]] = np.minimum.reduceat(m, starts[i:j] - lo, axis=1)
    return np.ascontiguousarray(out.T)


def lsh_params(threshold: float, num_perm: int, min_recall: float) -> tuple[int, int]:
    """(bands, rows) with the least false-candidate area meeting `min_recall` at the threshold.

    Falls back to the (b, r) with the highest recall at the threshold when none meets it.
    """
    grid = np.linspace(0.0, threshold, 257)
    best: tuple[float, int, int] | None = None
    fallback: tuple[float, int, int] = (-1.0, 2, 1)
    for r in range(1, num_perm // 2 + 1):
        p = threshold**r
        if p < 1e-12:
            break
        b = max(2, math.ceil(math.log1p(-min_recall) / math.log1p(-p) - 1e-9))
        if b * r > num_perm:
            b_max = num_perm // r
            fallback = max(fallback, (1 - (1 - p) ** b_max, b_max, r))
            continue
        curve = 1 - (1 - grid**r) ** b
        area = float(np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(grid)))
        if best is None or area < best[0]:
            best = (area, b, r)
    return (best[1], best[2]) if best else (fallback[1], fallback[2])


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """P(a pair of this Jaccard similarity shares at least one LSH bucket)."""
    return 1 - (1 - similarity**rows) ** bands


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64 bucket key per band: a hash of the band's `rows` values."""
    keys = np.empty((len(sigs), bands), np.uint64)
    for i in range(bands):
        acc = np.full(len(sigs), np.uint64(i + 1), np.uint64)
        for v in sigs[:, i * rows : (i + 1) * rows].T:
            acc = acc * _FOLD + v.astype(np.uint64)
        keys[:, i] = _fmix64(acc)
    return keys


def candidate_pairs(keys: np.ndarray) -> np.ndarray:
    """Unique (i, j), i < j, row pairs sharing a bucket in any band; (m, 2) int64, sorted."""
    n = len(keys)
    found: list[np.ndarray] = []
    for col in keys.T:
        order = np.argsort(col, kind="stable")
        sk = col[order]
        new = np.ones(n, bool)
        new[1:] = sk[1:] != sk[:-1]
        gid = np.cumsum(new) - 1
        size = np.bincount(gid)[gid]
        bounds = np.append(np.flatnonzero(new), n)
        group_end = bounds[1:][gid]
        first = order[bounds[:-1][gid]]
        small = size <= MAX_BUCKET
        pos = np.flatnonzero(small & (size >= 2))
        for d in range(1, MAX_BUCKET):  # positions with a d-th successor shrink as d grows
            pos = pos[pos + d < group_end[pos]]
            if not len(pos):
                break
            found.append(np.stack([order[pos], order[pos + d]], axis=1))
        big = np.flatnonzero(~small)
        if len(big):
            nxt = big[big + 1 < group_end[big]]
            found.append(np.stack([order[nxt], order[nxt + 1]], axis=1))
            found.append(np.stack([first[big], order[big]], axis=1))
    if not found:
        return np.zeros((0, 2), np.int64)
    pairs = np.concatenate(found).astype(np.int64)
    pairs = np.sort(pairs, axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    codes = np.unique(pairs[:, 0] * n + pairs[:, 1])
    return np.stack([codes // n, codes % n], axis=1)


def estimated_jaccard(
    left: np.ndarray, right: np.ndarray, pairs: np.ndarray, chunk: int = 65_536
) -> np.ndarray:
    """Share of equal values of `left[i]` and `right[j]` per pair (datasketch's `jaccard`)."""
    out = np.empty(len(pairs), np.float64)
    for s in range(0, len(pairs), chunk):
        p = pairs[s : s + chunk]
        out[s : s + chunk] = (left[p[:, 0]] == right[p[:, 1]]).mean(axis=1)
    return out


def exact_jaccard(
    sets: np.ndarray, offsets: np.ndarray, pairs: np.ndarray, chunk: int = 1 << 22
) -> np.ndarray:
    """Jaccard of pairs of sorted, unique uint64 hash sets stored flat with offsets."""
    lengths = np.diff(offsets)
    out = np.empty(len(pairs), np.float64)
    sizes = lengths[pairs[:, 0]] + lengths[pairs[:, 1]]
    ends = np.cumsum(sizes)
    s = 0
    while s < len(pairs):
        e = max(s + 1, int(np.searchsorted(ends, (ends[s - 1] if s else 0) + chunk, "right")))
        p, total = pairs[s:e], sizes[s:e]
        members = np.concatenate([p[:, 0], p[:, 1]])
        owner = np.tile(np.arange(len(p), dtype=np.uint64), 2)
        counts = lengths[members]
        idx = np.repeat(offsets[members] - np.cumsum(counts) + counts, counts)
        idx += np.arange(len(idx))
        keys = (np.repeat(owner, counts) << np.uint64(32)) | (sets[idx] & np.uint64(0xFFFFFFFF))
        keys.sort()
        dup = np.flatnonzero(keys[1:] == keys[:-1])
        inter = np.bincount((keys[dup] >> np.uint64(32)).astype(np.int64), minlength=len(p))
        union = total - inter
        out[s:e] = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        s = e
    return out


def unique_sets(hashes: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-text sorted unique 32-bit shingle hashes (flat, uint64) and offsets.

    32 bits are plenty for a Jaccard between two sets of a few hundred shingles (a false
    match per pair has probability ~1e-5) and let one sort of `text << 32 | hash` do it.
    """
    doc = np.repeat(np.arange(len(offsets) - 1, dtype=np.uint64), np.diff(offsets))
    keys = np.sort((doc << np.uint64(32)) | (hashes & np.uint64(0xFFFFFFFF)))
    keep = np.ones(len(keys), bool)
    keep[1:] = keys[1:] != keys[:-1]
    keys = keys[keep]
    counts = np.bincount((keys >> np.uint64(32)).astype(np.int64), minlength=len(offsets) - 1)
    return keys & np.uint64(0xFFFFFFFF), np.concatenate([[0], np.cumsum(counts)])


def connected_components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Component label per node 0..n-1: the smallest node index of its component."""
    parent = np.arange(n, dtype=np.int64)
    if len(pairs) == 0:
        return parent
    u, v = pairs[:, 0], pairs[:, 1]
    while True:
        pu, pv = parent[u], parent[v]
        differ = pu != pv
        if not differ.any():
            return parent
        pu, pv = pu[differ], pv[differ]
        low = np.minimum(pu, pv)
        np.minimum.at(parent, np.maximum(pu, pv), low)  # hook the larger root under the smaller
        while True:  # pointer jumping until every node points at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
