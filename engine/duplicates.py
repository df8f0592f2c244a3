"""Near-duplicate detection: the same sound stored more than once, in another form.

Exact byte copies are already one track (the id is the content's SHA-256), so
this finds the other kind: a wav and its mp3, a copy 6 dB quieter, a 22 kHz
resample, a copy with ~50 ms of silence trimmed or added. Such copies embed
almost identically, so two tracks are near-duplicates when

* the cosine of their track embeddings is at least ``threshold``, and
* their durations are compatible (see ``durations_compatible``): the pooled
  embedding is nearly blind to repetition (a short clip is tiled to 10 s
  before embedding, a long one is averaged over windows), so a one-bar loop
  and the same loop played twice, or a sample and its first half, embed alike
  and only the duration tells them apart.

The stored features are deliberately not used: a level change moves
``rms_energy``, a 22 kHz resample removes everything above 11 kHz and lowers
``spectral_centroid``, and tempo is often unknown or off by a factor of two.
Each would reject true copies more often than it rejects false ones.

Pure computation on numpy arrays, no store access: ``near_pairs`` finds the
candidate pairs by blocked matrix products, ``group`` turns accepted pairs
into groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["DuplicateGroup", "Group", "near_pairs", "durations_compatible", "group"]

DEFAULT_THRESHOLD = 0.97
DEFAULT_BLOCK = 2048


@dataclass(frozen=True)
class Group:
    """Tracks that are near-duplicates of one another.

    ``ids``: the members, best-connected first (highest mean cosine to the
    other members, ties by id); the first is the group's most typical copy.
    ``pairs``: every pair of members as ``(id_a, id_b, cosine)``, highest
    cosine first, ``id_a`` the one listed earlier in ``ids``.
    """

    ids: list[Any]
    pairs: list[tuple[Any, Any, float]]

    @property
    def min_score(self) -> float:
        """The lowest cosine between two members."""
        return min(score for _, _, score in self.pairs)


def near_pairs(vectors: np.ndarray, *, threshold: float,
               block: int = DEFAULT_BLOCK) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs of rows whose dot product (the cosine, for unit rows) is at least ``threshold``.

    Parameters
    ----------
    vectors : np.ndarray (n, d), float32, L2-normalised rows
    threshold : float, cosine in [-1, 1]
    block : int > 0, rows per tile: the work runs over the upper-triangle
        tiles of the (n, n) similarity matrix, each a ``block`` x ``block``
        matrix product, so memory beyond the input is about ``5 * block**2``
        bytes (a float32 tile, a boolean triangle) plus the pairs found.

    Returns
    -------
    i, j : np.ndarray (m,), int64, with ``i < j``, sorted by ``(i, j)``
    score : np.ndarray (m,), float32, ``vectors[i] @ vectors[j]``
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected vectors of shape (n, d), got {x.shape}")
    if block < 1:
        raise ValueError(f"block must be at least 1, got {block}")
    n = x.shape[0]
    tile = np.empty((min(block, n), min(block, n)), dtype=np.float32)  # reused: no allocation per tile
    lower = np.tri(len(tile), dtype=bool)  # a diagonal tile's pairs j <= i: each pair's twin, and i with itself
    found_i, found_j, found_s = [], [], []
    for r0 in range(0, n, block):
        rows = x[r0 : r0 + block]
        for c0 in range(r0, n, block):  # tiles on or right of the diagonal: the upper triangle only
            cols = x[c0 : c0 + block]
            t = tile[: len(rows), : len(cols)]
            np.matmul(rows, cols.T, out=t)
            if c0 == r0:
                np.putmask(t, lower[: len(rows), : len(cols)], -np.inf)
            # At a near-duplicate threshold few rows have a hit: find them with a cheap row maximum,
            # then look for the columns in those rows only (np.nonzero over the whole tile costs more).
            hit_rows = np.flatnonzero(t.max(axis=1) >= threshold)
            if len(hit_rows):
                ri, ci = np.nonzero(t[hit_rows] >= threshold)
                ri = hit_rows[ri]
                found_i.append(ri + r0)
                found_j.append(ci + c0)
                found_s.append(t[ri, ci])
    if not found_i:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    i, j, s = np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_s)
    order = np.lexsort((j, i))
    return i[order].astype(np.int64), j[order].astype(np.int64), s[order]


def durations_compatible(a: np.ndarray, b: np.ndarray, *, max_duration_ratio: float = 0.05,
                         min_duration_slack_s: float = 0.25) -> np.ndarray:
    """Whether durations ``a`` and ``b`` (seconds, broadcasting arrays) fit one sound.

    True where ``|a - b| <= max(min_duration_slack_s, max_duration_ratio * max(a, b))``.
    Why these numbers: a re-encoding changes the length by at most a few tens
    of ms (MP3 encoder delay and frame padding when the decoder ignores the
    gapless tag, a resample's rounding to whole samples), and trimming or adding
    silence by about 50 ms, possibly both on one copy; 0.25 s covers that
    for the shortest one-shots, where 5 % of 0.3 s would be 15 ms. For long
    tracks 5 % still allows seconds of trimmed silence, but stays far below
    the 100 % of a loop played twice, and rejects time-stretched versions
    (120 -> 126 BPM is already 5 %), which are edits rather than copies.
    NaN durations are never compatible.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.abs(a - b) <= np.maximum(min_duration_slack_s, max_duration_ratio * np.maximum(a, b))


@dataclass(frozen=True)
class DuplicateGroup:
    """A group as the library shows it: its tracks (engine.store.Track, best-connected first) and the
    cosine of every pair of them, highest first."""

    tracks: list
    pairs: list[tuple[str, str, float]]


def group(ids: Sequence[Any], vectors: np.ndarray, durations: np.ndarray, *, threshold: float = DEFAULT_THRESHOLD,
          max_duration_ratio: float = 0.05, min_duration_slack_s: float = 0.25, chain_slack: float | None = 0.02,
          block: int = DEFAULT_BLOCK) -> list[Group]:
    """Groups of near-duplicate tracks.

    Parameters
    ----------
    ids : sequence of n track ids (any sortable, hashable type; SHA-256 hex in the library)
    vectors : np.ndarray (n, d), float32, L2-normalised track embeddings
    durations : np.ndarray (n,), seconds
    threshold : float, the cosine two tracks need to be linked
    max_duration_ratio, min_duration_slack_s : the duration rule, see ``durations_compatible``
    chain_slack : float or None. Linking is transitive, so A~B and B~C could
        put A and C in one group although they are far apart (a chain through
        a family of similar kicks would make one huge group). With a number,
        a link is refused when it would put two tracks with cosine below
        ``threshold - chain_slack``, or with incompatible durations, into one
        group (complete linkage); links are tried from the highest cosine
        down, so each track joins its closest copies first. The slack lets a
        mp3 and a 22 kHz resample of the same wav, each 0.98 from it but
        0.96 from each other, stay together. A group without such a pair is
        exactly its connected component. ``None`` keeps plain connected
        components (chains accepted).
    block : int, tile size for ``near_pairs``

    Returns
    -------
    list[Group], only groups of two or more, largest first, then by first id.
    """
    ids = list(ids)
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    dur = np.asarray(durations, dtype=np.float64)
    n = len(ids)
    if x.shape[0] != n or dur.shape != (n,):
        raise ValueError(f"{n} ids need vectors (n, d) and durations (n,), got {x.shape} and {dur.shape}")
    if n < 2:
        return []

    def compatible(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return durations_compatible(a, b, max_duration_ratio=max_duration_ratio,
                                    min_duration_slack_s=min_duration_slack_s)

    i, j, score = near_pairs(x, threshold=threshold, block=block)
    ok = compatible(dur[i], dur[j])
    i, j, score = i[ok], j[ok], score[ok]
    # Strongest links first (ties by index, so the result never depends on sort stability).
    order = np.lexsort((j, i, -score))
    floor = None if chain_slack is None else threshold - chain_slack

    parent = list(range(n))
    members: dict[int, list[int]] = {}  # root -> its tracks, only for groups of 2+
    refused: dict[int, set[int]] = {}  # root -> roots it may never join (complete linkage is monotone)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]  # path halving
            a = parent[a]
        return a

    def fits(a: list[int], b: list[int]) -> bool:
        # Every cross pair must pass; chunked so two large groups never need an |a| x |b| matrix at once.
        step = max(1, (block * block) // len(b))
        for s in range(0, len(a), step):
            part = a[s : s + step]
            if (x[part] @ x[b].T).min() < floor or not compatible(dur[part, None], dur[None, b]).all():
                return False
        return True

    # A loop over the accepted pairs, not over all pairs: at a near-duplicate threshold they are few.
    for k in order.tolist():
        ra, rb = find(int(i[k])), find(int(j[k]))
        if ra == rb or rb in refused.get(ra, ()):
            continue
        a, b = members.get(ra, [ra]), members.get(rb, [rb])
        if floor is not None and not fits(a, b):
            refused.setdefault(ra, set()).add(rb)
            refused.setdefault(rb, set()).add(ra)
            continue
        if len(a) < len(b):
            ra, rb, a, b = rb, ra, b, a
        parent[rb] = ra
        members[ra] = a + b
        members.pop(rb, None)
        # A group that refused a part of the merged group refuses all of it.
        for other in refused.pop(rb, set()):
            refused[other].discard(rb)
            refused[other].add(ra)
            refused.setdefault(ra, set()).add(other)

    groups = [_make_group(ids, x, sorted(m)) for m in members.values()]
    groups.sort(key=lambda g: (-len(g.ids), g.ids[0]))
    return groups


def _make_group(ids: list[Any], x: np.ndarray, index: list[int]) -> Group:
    """A Group from member indices: scores recomputed from one product, so they do not depend on ``block``."""
    sims = (x[index] @ x[index].T).astype(np.float64)
    sims = (sims + sims.T) / 2  # BLAS need not give s[a, b] == s[b, a] to the last bit; ordering must not hinge on it
    m = len(index)
    mean = (sims.sum(axis=1) - np.diag(sims)) / (m - 1)
    rank = sorted(range(m), key=lambda p: (-mean[p], ids[index[p]]))
    sims = sims[np.ix_(rank, rank)]
    member_ids = [ids[index[p]] for p in rank]
    a, b = np.triu_indices(m, k=1)
    by_score = np.lexsort((b, a, -sims[a, b]))
    pairs = [(member_ids[a[k]], member_ids[b[k]], float(sims[a[k], b[k]])) for k in by_score]
    return Group(member_ids, pairs)
