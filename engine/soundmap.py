"""The sound map: every track as a point in 2-D, placed by its CLAP embedding.

Pure numpy-in, numpy-out computation behind the map page; nothing here reads the store.

* ``project`` lays out a whole library: PCA (always available, numpy only) or UMAP (``umap-learn``, optional,
  imported lazily). Coordinates come back scaled into [-1, 1].
* ``place`` adds a few new tracks to an existing map without recomputing it: each new vector lands at the
  distance-weighted average of the coordinates of its ``k`` nearest reference vectors.
* ``choose_method`` is what ``method="auto"`` picks for a given track count.

What holds (tests/test_soundmap.py checks each):

* Same input, same output, bit for bit, across calls and processes on the same CPU and library versions (checked
  for PCA and for UMAP at 10k and 100k tracks): seeds are fixed, PCA components are sign-fixed, numpy's BLAS runs on
  one thread whatever the caller's setting, and UMAP runs single-threaded with ``random_state`` (umap-learn
  enforces that). Another CPU or another numpy/numba/umap version may round differently.
* Row order does not matter: permuting the input rows permutes the output rows and nothing else. The layout is
  computed from the distinct rows in a canonical (byte-sorted) order, then mapped back to the caller's rows.
* Duplicate rows get identical coordinates; -0.0 and 0.0 count as equal.
* n = 0 gives a (0, 2) array, n = 1 (or all rows equal) puts every point at the origin, n = 2 gives a horizontal
  segment, n = 3 a triangle (or a segment, if collinear). No warnings, no NaNs.
* Scaling keeps the aspect ratio: the bounding box is centred on the origin and its longer side spans exactly
  [-1, 1], so points on a line in the projection stay on a line.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

METHODS = ("auto", "pca", "umap")

# Below this many distinct tracks "auto" uses PCA even when UMAP is installed. With n_neighbors=15 each point's
# graph neighbourhood is a large share of a small library and UMAP's layout of a few dozen points is arbitrary,
# while PCA's axes are stable and readable (on 200 points in 10 clusters PCA already kept 93 % of map neighbours in
# their cluster, UMAP 100 %). And UMAP's first call in a process compiles numba code: ~30 s here (2 busy cores)
# before a 200-point layout that then takes 0.5 s, against 0.07 s for PCA.
UMAP_MIN_TRACKS = 200

# Above this many distinct tracks UMAP is fitted on a seeded sample of this size and the other tracks are placed
# into that layout with ``place`` (k = n_neighbors nearest fitted tracks). Measured on 100k clustered 512-d vectors
# (bench/bench_map.py, 2 busy cores, numba already compiled): ~40 s this way against 85-160 s fitting all 100k.
UMAP_MAX_FIT = 20_000

# UMAP runs on the data reduced to this many PCA dimensions (the usual advice for UMAP on wide embeddings). UMAP's
# neighbour search and ``place`` scale with the dimension: at 100k tracks the search took 9 s on 50 dimensions
# against 34 s on 512, and the sampled 100k map 38 s against 75 s. The layout itself is 2-D and does not care.
UMAP_PCA_DIMS = 50

# Eigenvalues this small relative to the largest are rounding noise (e.g. the second component of two points):
# their axis is set to exactly 0 instead of projecting onto an arbitrary noise direction.
_RELATIVE_EIGEN_FLOOR = 1e-9

# Rows per float64 block in the covariance and projection passes (8192 x 512 x 8 B = 32 MiB).
_BLOCK_ROWS = 8192

# Elements of the (new x reference) score block in ``place`` (float32, 64 MiB); also bounds its candidate block.
_BLOCK_ELEMENTS = 16_000_000


def _one_blas_thread(func):
    """Run ``func`` with numpy's BLAS (OpenBLAS) on one thread.

    Two reasons. Speed where it matters: on a 2-core machine busy with other work, a 512 x 512 eigh took 2-7 s
    with two BLAS threads spinning against each other and 0.13 s with one.
    And reproducibility: the result does not depend on the caller's thread setup. The limit is process-wide while
    it lasts; the server already keeps numpy's BLAS on one thread once torch runs (engine/clap/runtime.py).
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return func(*args, **kwargs)
    return wrapper


def umap_available() -> bool:
    """Whether ``umap-learn`` is installed (checked without importing it: the import costs seconds)."""
    return importlib.util.find_spec("umap") is not None


def choose_method(n: int, *, umap_installed: bool | None = None) -> str:
    """The method ``project(method="auto")`` uses for ``n`` distinct tracks: "umap" or "pca".

    UMAP when it is installed and ``n >= UMAP_MIN_TRACKS``; PCA otherwise. ``umap_installed`` overrides the check.
    """
    installed = umap_available() if umap_installed is None else umap_installed
    return "umap" if installed and n >= UMAP_MIN_TRACKS else "pca"


@_one_blas_thread
def project(vectors: np.ndarray, *, method: str = "auto", seed: int = 0, pca_dims: int | None = UMAP_PCA_DIMS,
            max_fit: int | None = UMAP_MAX_FIT, n_neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """Map (n, d) embeddings to (n, 2) points in [-1, 1].

    Parameters
    ----------
    vectors : np.ndarray, shape (n, d)
        One embedding per track, finite; CLAP's are float32 and unit length (any finite rows work). Converted to
        float32. Distances are Euclidean, which for unit rows orders neighbours exactly as cosine similarity does.
    method : {"auto", "pca", "umap"}
        "pca": the first two principal components (numpy only). "umap": UMAP; raises ImportError when umap-learn
        is missing, and uses PCA when there are fewer than ``n_neighbors + 2`` distinct rows (no graph to lay
        out). "auto": ``choose_method`` on the number of distinct rows, and PCA if importing umap fails.
    seed : int
        Seed for UMAP (its ``random_state``) and for choosing the UMAP fitting sample. PCA does not use it.
    pca_dims : int or None
        UMAP only: reduce to this many PCA dimensions first (None: use all d). Speeds up the neighbour search.
    max_fit : int or None
        UMAP only: with more distinct rows than this, fit UMAP on a seeded sample of ``max_fit`` rows and
        ``place`` the others (k = ``n_neighbors``) into that layout. None: fit on all rows.
    n_neighbors, min_dist :
        UMAP's parameters of the same names.

    Returns
    -------
    np.ndarray, shape (n, 2), float32
        Row i is track i's position. The layout's bounding box is centred on the origin and its longer side spans
        [-1, 1]; the aspect ratio is kept. Deterministic and row-order independent (see the module docstring).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    x = _as_matrix(vectors, "vectors")
    if x.shape[0] == 0:
        return np.zeros((0, 2), np.float32)
    unique, inverse, counts = _unique_rows(x)
    m = unique.shape[0]

    if method == "umap" and not umap_available():
        raise ImportError("method='umap' needs umap-learn (pip install umap-learn); method='auto' falls back to PCA")
    chosen = choose_method(m) if method == "auto" else method
    coords = None
    if chosen == "umap" and m >= n_neighbors + 2:
        try:
            coords = _umap_layout(unique, counts, seed=seed, pca_dims=pca_dims, max_fit=max_fit,
                                  n_neighbors=n_neighbors, min_dist=min_dist)
        except ImportError:  # installed but broken (e.g. a numba that does not match numpy)
            if method == "umap":
                raise
    if coords is None:
        coords = _scale(_pca_coords(unique, counts))
    return coords[inverse]


@_one_blas_thread
def place(new_vectors: np.ndarray, *, reference_vectors: np.ndarray, reference_coords: np.ndarray,
          k: int = 10) -> np.ndarray:
    """Put new tracks onto an existing map without recomputing it.

    Each new vector lands at the inverse-distance-weighted average of the coordinates of its ``k`` nearest
    reference vectors (Euclidean). A new vector equal to a reference vector lands exactly on that reference's
    coordinates (on the mean of them, if several references are equal to it). The result lies inside the convex
    hull of the reference coordinates, so a map in [-1, 1] stays in [-1, 1].

    Parameters
    ----------
    new_vectors : np.ndarray, shape (q, d)
        Embeddings to place (float32 after conversion, finite).
    reference_vectors : np.ndarray, shape (n, d)
        Embeddings of the tracks already on the map, n >= 1.
    reference_coords : np.ndarray, shape (n, 2)
        Their map coordinates, e.g. from ``project``.
    k : int
        Neighbours to average, k >= 1; clipped to n.

    Returns
    -------
    np.ndarray, shape (q, 2), float32
    """
    q = _as_matrix(new_vectors, "new_vectors")
    ref = _as_matrix(reference_vectors, "reference_vectors")
    ref_coords = np.asarray(reference_coords, dtype=np.float64)
    if ref_coords.ndim != 2 or ref_coords.shape[0] != ref.shape[0]:
        raise ValueError(f"reference_coords must have shape ({ref.shape[0]}, c), not {ref_coords.shape}")
    if q.shape[1] != ref.shape[1]:
        raise ValueError(f"new_vectors have {q.shape[1]} dimensions, reference_vectors {ref.shape[1]}")
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    out = np.zeros((q.shape[0], ref_coords.shape[1]), np.float32)
    if q.shape[0] == 0:
        return out
    if ref.shape[0] == 0:
        raise ValueError("cannot place vectors onto an empty map (no reference vectors)")
    k = min(k, ref.shape[0])
    ref_sq = np.einsum("ij,ij->i", ref, ref)
    block = max(1, _BLOCK_ELEMENTS // max(ref.shape[0], 2 * k * ref.shape[1]))  # scores, and float64 candidates
    for start in range(0, q.shape[0], block):
        qb = q[start:start + block]
        # Squared distance up to the per-query constant |q|^2, which does not change the ranking.
        score = ref_sq[None, :] - 2.0 * (qb @ ref.T)
        nearest = np.argpartition(score, k - 1, axis=1)[:, :k] if k < ref.shape[0] else \
            np.broadcast_to(np.arange(k), (qb.shape[0], k))
        # Exact distances for the k candidates only, in float64: an identical vector gives exactly 0 here,
        # where the float32 matrix product above is off by rounding.
        diff = qb[:, None, :].astype(np.float64) - ref[nearest].astype(np.float64)
        dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        exact = dist == 0.0
        weight = np.where(exact.any(axis=1, keepdims=True), exact.astype(np.float64),
                          1.0 / np.maximum(dist, np.finfo(np.float64).tiny))
        weight /= weight.sum(axis=1, keepdims=True)
        out[start:start + block] = np.einsum("ij,ijc->ic", weight, ref_coords[nearest])
    return out


# --- internals ---------------------------------------------------------------------------------------------------

def _as_matrix(vectors: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, d), not shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return np.ascontiguousarray(x)


def _unique_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of (n, d) float32 ``x`` in a canonical order, the (n,) index of each row's distinct row, and
    the (m,) count of each. Canonical = sorted by the rows' bytes, so it does not depend on the input's order;
    np.unique(axis=0) does the same but took 3.4 s for 100k x 512 against 0.1 s for this byte sort."""
    n, d = x.shape
    if d == 0:
        return np.zeros((1, 0), np.float32), np.zeros(n, np.intp), np.array([n])
    x = x + np.float32(0.0)  # -0.0 + 0.0 == +0.0: equal values get equal bytes
    keys = x.view(np.dtype((np.void, d * x.itemsize))).ravel()
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = np.ones(n, dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]  # byte comparison; no copy of the sorted matrix needed
    group = np.cumsum(first) - 1
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = group
    return x[order[first]], inverse, np.bincount(group)


def _pca_basis(x: np.ndarray, counts: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and sign-fixed principal axes (d, dims) of the rows of ``x`` weighted by ``counts``.

    Uses eigh of the d x d covariance: for n = 100k, d = 512 the covariance costs ~1 s and eigh ~0.05 s, while
    an SVD of the centred (n, d) data costs ~2 s per 20k rows. Axes whose variance is rounding noise are zero
    columns. Each axis's largest-magnitude loading is positive (first such index on ties), so the result does not
    depend on LAPACK's arbitrary signs.
    """
    d = x.shape[1]
    weights = counts.astype(np.float64)
    total = weights.sum()
    mean = np.zeros(d)
    for start in range(0, x.shape[0], _BLOCK_ROWS):
        mean += weights[start:start + _BLOCK_ROWS] @ x[start:start + _BLOCK_ROWS].astype(np.float64)
    mean /= total
    cov = np.zeros((d, d))
    root = np.sqrt(weights)
    for start in range(0, x.shape[0], _BLOCK_ROWS):
        scaled = (x[start:start + _BLOCK_ROWS].astype(np.float64) - mean) * root[start:start + _BLOCK_ROWS, None]
        cov += scaled.T @ scaled  # numpy sees a.T @ a and calls syrk: half the work of a general product
    cov /= total
    values, vectors = np.linalg.eigh(cov)  # ascending
    dims = min(dims, d)
    values, axes = values[::-1][:dims], vectors[:, ::-1][:, :dims].copy()
    biggest = np.argmax(np.abs(axes), axis=0)
    axes *= np.where(axes[biggest, np.arange(dims)] < 0, -1.0, 1.0)
    floor = max(values[0], 0.0) * _RELATIVE_EIGEN_FLOOR if dims else 0.0
    axes[:, (values <= floor) | (values <= 0.0)] = 0.0
    return mean, axes


def _pca_project(x: np.ndarray, mean: np.ndarray, axes: np.ndarray) -> np.ndarray:
    out = np.empty((x.shape[0], axes.shape[1]))
    for start in range(0, x.shape[0], _BLOCK_ROWS):
        out[start:start + _BLOCK_ROWS] = (x[start:start + _BLOCK_ROWS].astype(np.float64) - mean) @ axes
    return out


def _pca_coords(unique: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(m, 2) float64 PCA coordinates of the distinct rows; duplicates weigh in through ``counts``, so the axes
    are those of the full input."""
    if unique.shape[0] == 1:
        return np.zeros((1, 2))
    mean, axes = _pca_basis(unique, counts, 2)
    coords = _pca_project(unique, mean, axes)
    if coords.shape[1] < 2:  # d == 1
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords


def _umap_layout(unique: np.ndarray, counts: np.ndarray, *, seed: int, pca_dims: int | None, max_fit: int | None,
                 n_neighbors: int, min_dist: float) -> np.ndarray:
    """(m, 2) float32 UMAP layout of the distinct rows, already scaled."""
    with warnings.catch_warnings():  # umap warns at import that TensorFlow (ParametricUMAP) is missing
        warnings.simplefilter("ignore", ImportWarning)
        import umap  # lazy: optional dependency, and importing it (numba) takes seconds

    data = unique
    if pca_dims is not None and pca_dims < unique.shape[1]:
        mean, axes = _pca_basis(unique, counts, pca_dims)
        data = _pca_project(unique, mean, axes).astype(np.float32)
    m = data.shape[0]
    fit = np.arange(m)
    if max_fit is not None and m > max_fit:
        fit = np.sort(np.random.default_rng(seed).choice(m, size=max_fit, replace=False))
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, metric="euclidean",
                        random_state=seed, n_jobs=1, init="spectral", verbose=False)
    # UMAP warns about disconnected vertices/components; for a map they are informational, not errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layout = reducer.fit_transform(data[fit])
    coords = np.zeros((m, 2), np.float32)
    coords[fit] = _scale(np.asarray(layout, dtype=np.float64))
    if fit.size < m:
        rest = np.ones(m, dtype=bool)
        rest[fit] = False
        coords[rest] = place(data[rest], reference_vectors=data[fit], reference_coords=coords[fit], k=n_neighbors)
    return coords


def _scale(coords: np.ndarray) -> np.ndarray:
    """(m, 2) float64 -> float32: centre the bounding box on the origin, its longer side spanning [-1, 1]."""
    low, high = coords.min(axis=0), coords.max(axis=0)
    half = float((high - low).max()) / 2.0
    if not half > 0.0:
        return np.zeros(coords.shape, np.float32)
    return np.clip((coords - (low + high) / 2.0) / half, -1.0, 1.0).astype(np.float32)
