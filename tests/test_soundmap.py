"""engine/soundmap.py: known answers on synthetic embeddings, edge cases, determinism, ``place``.

Runs without umap-learn (the main venv has none); the UMAP tests skip then.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from engine import soundmap
from engine.soundmap import choose_method, place, project

# Any warning (divide by zero, invalid value, UMAP chatter) is a failure here.
pytestmark = pytest.mark.filterwarnings("error")

D = 512


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def basis(i: int, d: int = D) -> np.ndarray:
    e = np.zeros(d, np.float32)
    e[i] = 1.0
    return e


def clusters(n_per: int, centres: np.ndarray, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(centres)), n_per)
    x = unit(centres[labels] + spread * rng.standard_normal((len(labels), centres.shape[1])))
    return x, labels


def reference_pca(x: np.ndarray) -> np.ndarray:
    """Textbook PCA by SVD of the centred data, scaled like soundmap (bounding box, shared factor)."""
    xc = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    y = xc @ vt[:2].T
    low, high = y.min(axis=0), y.max(axis=0)
    return (y - (low + high) / 2) / ((high - low).max() / 2)


# --- shapes and edge cases ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["pca", "auto"])
def test_empty_input_gives_empty_map(method):
    out = project(np.zeros((0, D), np.float32), method=method)
    assert out.shape == (0, 2) and out.dtype == np.float32


def test_one_track_sits_at_the_origin():
    out = project(basis(3)[None, :])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0.0, 0.0]])


def test_two_tracks_are_the_ends_of_a_horizontal_segment():
    # The sign fix makes the axis's largest loading positive; e0 - e1 has equal loadings, the first (dim 0) wins,
    # so e0 is on the right.
    out = project(np.stack([basis(0), basis(1)]))
    np.testing.assert_allclose(out, [[1.0, 0.0], [-1.0, 0.0]], atol=1e-6)
    assert np.all(out[:, 1] == 0.0)  # the second axis has no variance: exactly zero, not rounding noise


def test_a_direction_without_variance_is_exactly_zero_not_rounding_noise():
    # Random rows make the covariance's null space come out of eigh with rounding noise in it; without the
    # eigenvalue floor the second coordinate would be ~1e-17 instead of 0.
    rng = np.random.default_rng(8)
    a, b = unit(rng.standard_normal((2, D)))
    for x in (np.stack([a, b]), np.stack([a, b, (a + b) / 2, a + 0.25 * (b - a)])):
        out = project(x)
        assert np.all(out[:, 1] == 0.0), out[:, 1]
        assert out[0, 0] == pytest.approx(-out[1, 0]) and abs(out[0, 0]) == pytest.approx(1.0)


def test_three_tracks_keep_their_triangle():
    # Three orthonormal vectors form an equilateral triangle; PCA onto their plane is an isometry and the scaling
    # keeps the aspect ratio, so the triangle stays equilateral.
    out = project(np.stack([basis(0), basis(5), basis(9)])).astype(np.float64)
    sides = [np.linalg.norm(out[i] - out[j]) for i, j in [(0, 1), (1, 2), (0, 2)]]
    np.testing.assert_allclose(sides, sides[0], rtol=1e-5)
    assert np.abs(out).max() == pytest.approx(1.0)
    assert out.min(axis=0)[np.argmax(np.ptp(out, axis=0))] == pytest.approx(-1.0)


def test_collinear_three_tracks_lie_on_the_x_axis():
    a, b = basis(0), basis(1)
    x = np.stack([a, (a + b) / 2, b])  # not unit: any finite rows are accepted
    out = project(x)
    assert np.all(out[:, 1] == 0.0)
    np.testing.assert_allclose(out[:, 0], [1.0, 0.0, -1.0], atol=1e-6)


@pytest.mark.parametrize("rows", [np.ones((7, D)), np.zeros((4, D)), np.tile(unit(np.arange(1.0, D + 1)), (300, 1))])
def test_constant_input_puts_everything_at_the_origin(rows):
    out = project(rows)
    np.testing.assert_array_equal(out, np.zeros((len(rows), 2), np.float32))


def test_duplicate_rows_get_identical_coordinates_and_weigh_in_like_plain_pca():
    rng = np.random.default_rng(3)
    distinct = unit(rng.standard_normal((6, 16)))
    x = distinct[[0, 1, 0, 2, 3, 0, 4, 5, 5, 0]]
    out = project(x)
    assert np.array_equal(out[0], out[2]) and np.array_equal(out[0], out[5]) and np.array_equal(out[7], out[8])
    assert len(np.unique(out, axis=0)) == 6
    # Same as PCA of the full input with its duplicates (up to each axis's sign).
    ref = reference_pca(x)
    signs = np.sign((ref * out).sum(axis=0))
    np.testing.assert_allclose(out, ref * signs, atol=1e-5)


def test_negative_zero_equals_zero():
    # 2**-125's little-endian bytes (00 00 00 01) sort between those of 0.0 (00 00 00 00) and -0.0 (00 00 00 80),
    # so a byte sort alone would not bring 0.0 and -0.0 together.
    x = np.array([[0.0, 0.0], [-0.0, 0.0], [2.0**-125, 0.0]], np.float32)
    assert np.signbit(x[1, 0]) and x[2, 0] > 0
    out = project(x)
    assert np.array_equal(out[0], out[1]) and not np.array_equal(out[0], out[2])
    unique, inverse, counts = soundmap._unique_rows(x)
    assert len(unique) == 2 and inverse[0] == inverse[1] and sorted(counts.tolist()) == [1, 2]


def test_one_dimensional_vectors():
    out = project(np.array([[0.0], [1.0], [3.0]], np.float32))
    np.testing.assert_allclose(out, [[-1.0, 0.0], [-1 / 3, 0.0], [1.0, 0.0]], atol=1e-6)


@pytest.mark.parametrize("bad", [np.zeros(D), np.zeros((2, 3, 4)), np.array([[1.0, np.nan]]), np.array([[np.inf, 0]])])
def test_rejects_malformed_input(bad):
    with pytest.raises(ValueError):
        project(bad)


def test_rejects_unknown_method():
    with pytest.raises(ValueError, match="method"):
        project(np.eye(3, dtype=np.float32), method="tsne")


# --- known answers ------------------------------------------------------------------------------------------------

def test_matches_textbook_pca_on_random_data():
    x = unit(np.random.default_rng(7).standard_normal((400, 64)) * np.linspace(3, 0.1, 64))
    out = project(x, method="pca")
    ref = reference_pca(x)
    signs = np.sign((ref * out).sum(axis=0))
    np.testing.assert_allclose(out, ref * signs, atol=1e-5)


def test_two_separated_clusters_land_in_separate_regions():
    centres = np.stack([basis(0), basis(1)]).astype(np.float64)
    x, labels = clusters(150, centres, spread=0.02)
    out = project(x, method="pca")
    a, b = out[labels == 0, 0], out[labels == 1, 0]
    # The clusters' separation is the dominant direction: split along x with a clear gap.
    gap = max(a.min() - b.max(), b.min() - a.max())
    assert gap > 1.0
    assert np.abs(out[:, 1]).max() < 0.5  # within-cluster noise is small next to the separation


def test_four_clusters_are_each_compact_and_apart():
    # Corners of a square in the (e0, e1) plane, off the origin along e4: the top two components span that plane.
    corners = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], np.float64)
    centres = basis(4) + 0.5 * (corners[:, :1] * basis(0) + corners[:, 1:] * basis(1))
    x, labels = clusters(60, centres, spread=0.002, seed=1)
    out = project(x, method="pca").astype(np.float64)
    means = np.stack([out[labels == c].mean(axis=0) for c in range(4)])
    spread = max(np.linalg.norm(out[labels == c] - means[c], axis=1).max() for c in range(4))
    apart = min(np.linalg.norm(means[i] - means[j]) for i in range(4) for j in range(i + 1, 4))
    assert apart > 10 * spread


def test_points_along_one_direction_land_on_a_line_in_order():
    rng = np.random.default_rng(5)
    t = np.sort(rng.uniform(-1, 1, 200))
    direction = basis(7).astype(np.float64)  # largest loading +1 on dim 7: the sign fix keeps t increasing
    x = basis(0) + t[:, None] * direction + 1e-4 * rng.standard_normal((200, D))
    out = project(x, method="pca").astype(np.float64)
    slope, intercept = np.polyfit(t, out[:, 0], 1)
    assert slope > 0  # increasing with t
    assert np.abs(out[:, 0] - (slope * t + intercept)).max() < 0.01  # x is t, rescaled
    assert np.abs(out[:, 1]).max() < 0.05  # y is noise
    exact = project(basis(0) + t[:, None] * direction, method="pca")
    assert np.all(exact[:, 1] == 0.0)


def test_sign_fix_makes_the_largest_loading_positive():
    t = np.linspace(-1, 1, 50)
    direction = (-3 * basis(1) + basis(2)) / np.sqrt(10)  # largest loading is negative: the axis becomes -direction
    out = project(basis(0) + t[:, None] * direction, method="pca")
    assert np.all(np.diff(out[:, 0]) < 0)


def test_coordinates_fill_minus_one_to_one_on_the_long_side():
    centres = np.stack([basis(0), basis(1), basis(2)]).astype(np.float64)
    x, _ = clusters(40, centres, spread=0.05, seed=2)
    out = project(x, method="pca")
    assert np.abs(out).max() <= 1.0
    long_side = np.argmax(np.ptp(out, axis=0))
    assert out[:, long_side].min() == pytest.approx(-1.0) and out[:, long_side].max() == pytest.approx(1.0)
    short = 1 - long_side
    assert out[:, short].min() == pytest.approx(-out[:, short].max(), abs=1e-6)  # centred bounding box


# --- determinism --------------------------------------------------------------------------------------------------

def test_same_input_gives_bit_identical_output():
    x, _ = clusters(100, unit(np.random.default_rng(0).standard_normal((5, D))).astype(np.float64), spread=0.05)
    first = project(x, method="pca", seed=0)
    assert np.array_equal(first, project(x.copy(), method="pca", seed=0))
    assert np.array_equal(first, project(x, method="pca", seed=123))  # PCA has no randomness


def test_distinct_rows_come_out_in_an_order_that_does_not_depend_on_the_input_order():
    # UMAP's layout depends on row order; project runs it on these canonical distinct rows.
    rng = np.random.default_rng(2)
    distinct = unit(rng.standard_normal((50, 8)))
    x = distinct[rng.integers(0, 50, 400)]
    unique, inverse, counts = soundmap._unique_rows(x)
    assert len(unique) == len(np.unique(x, axis=0)) and counts.sum() == len(x)
    np.testing.assert_array_equal(unique[inverse], x)
    perm = rng.permutation(len(x))
    again, inverse2, counts2 = soundmap._unique_rows(x[perm])
    np.testing.assert_array_equal(again, unique)
    np.testing.assert_array_equal(counts2, counts)
    np.testing.assert_array_equal(inverse2, inverse[perm])


def test_row_order_only_permutes_the_output():
    x, _ = clusters(100, unit(np.random.default_rng(0).standard_normal((5, D))).astype(np.float64), spread=0.05)
    x = np.concatenate([x, x[:10]])  # with duplicates
    perm = np.random.default_rng(9).permutation(len(x))
    assert np.array_equal(project(x[perm], method="pca"), project(x, method="pca")[perm])


# --- method choice and the optional UMAP --------------------------------------------------------------------------

def test_choose_method():
    assert choose_method(10_000, umap_installed=False) == "pca"
    assert choose_method(10_000, umap_installed=True) == "umap"
    assert choose_method(soundmap.UMAP_MIN_TRACKS - 1, umap_installed=True) == "pca"
    assert choose_method(soundmap.UMAP_MIN_TRACKS, umap_installed=True) == "umap"
    assert choose_method(10_000) == ("umap" if soundmap.umap_available() else "pca")


def test_auto_falls_back_to_pca_when_umap_is_broken(monkeypatch):
    # umap "installed" but failing to import (e.g. a numba that does not match numpy).
    monkeypatch.setattr(soundmap, "umap_available", lambda: True)
    monkeypatch.setitem(sys.modules, "umap", None)  # makes `import umap` raise ImportError
    x, _ = clusters(60, np.stack([basis(0), basis(1), basis(2), basis(3), basis(4)]).astype(np.float64), 0.05)
    assert choose_method(len(x)) == "umap"
    assert np.array_equal(project(x, method="auto"), project(x, method="pca"))
    with pytest.raises(ImportError):
        project(x, method="umap")


@pytest.mark.skipif(soundmap.umap_available(), reason="umap-learn is installed")
def test_explicit_umap_without_umap_learn_raises():
    with pytest.raises(ImportError, match="umap-learn"):
        project(np.eye(3, dtype=np.float32), method="umap")


@pytest.mark.timeout(600)
def test_umap_separates_clusters_deterministically_and_places_the_unfitted_rest():
    if not soundmap.umap_available():
        pytest.skip("umap-learn is not installed")
    centres = unit(np.random.default_rng(4).standard_normal((4, 64))).astype(np.float64)
    x, labels = clusters(100, centres, spread=0.03)
    first = project(x, method="umap", seed=1, max_fit=300)  # 300 fitted, 100 placed
    assert np.array_equal(first, project(x, method="umap", seed=1, max_fit=300))
    assert first.shape == (400, 2) and np.abs(first).max() <= 1.0
    means = np.stack([first[labels == c].mean(axis=0) for c in range(4)])
    spread = max(np.linalg.norm(first[labels == c] - means[c], axis=1).max() for c in range(4))
    apart = min(np.linalg.norm(means[i] - means[j]) for i in range(4) for j in range(i + 1, 4))
    assert apart > spread
    perm = np.random.default_rng(2).permutation(len(x))
    assert np.array_equal(project(x[perm], method="umap", seed=1, max_fit=300), first[perm])


# --- place --------------------------------------------------------------------------------------------------------

def _reference_map(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    centres = unit(np.random.default_rng(seed).standard_normal((6, D))).astype(np.float64)
    x, _ = clusters(n // 6, centres, spread=0.04, seed=seed)
    return x, project(x, method="pca")


def test_place_puts_a_copy_exactly_on_its_reference():
    ref, coords = _reference_map()
    out = place(ref[[5, 17, 250]], reference_vectors=ref, reference_coords=coords, k=10)
    np.testing.assert_array_equal(out, coords[[5, 17, 250]])


def test_place_averages_equal_references():
    ref = np.stack([basis(0, 8), basis(0, 8), basis(1, 8)])
    coords = np.array([[0.0, 0.0], [1.0, 0.5], [-1.0, -1.0]], np.float32)
    np.testing.assert_array_equal(place(basis(0, 8)[None], reference_vectors=ref, reference_coords=coords, k=3),
                                  [[0.5, 0.25]])
    # Many equal references: averaged, not weighted by "1 / 0" (which overflows to inf / inf = NaN).
    ref = np.concatenate([np.tile(basis(0, 8), (6, 1)), basis(1, 8)[None]])
    coords = np.concatenate([np.linspace(-1, 1, 6)[:, None] * [1.0, 0.0], [[0.0, 1.0]]]).astype(np.float32)
    out = place(basis(0, 8)[None], reference_vectors=ref, reference_coords=coords, k=7)
    np.testing.assert_allclose(out, [[0.0, 0.0]], atol=1e-7)


def test_place_weights_by_inverse_distance():
    ref = np.stack([basis(0, 4), basis(1, 4), basis(2, 4)])
    coords = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    midway = ((basis(0, 4) + basis(1, 4)) / 2)[None]
    np.testing.assert_allclose(place(midway, reference_vectors=ref, reference_coords=coords, k=2), [[0.0, 0.0]],
                               atol=1e-7)
    # 1/4 of the way from ref 0 to ref 1: distances 1/4 and 3/4 of |e0 - e1|, weights 3:1 -> x = -1/2.
    quarter = (0.75 * basis(0, 4) + 0.25 * basis(1, 4))[None]
    np.testing.assert_allclose(place(quarter, reference_vectors=ref, reference_coords=coords, k=2), [[-0.5, 0.0]],
                               atol=1e-6)
    # k = 1 snaps to the nearest reference; k larger than n uses all of them.
    np.testing.assert_array_equal(place(quarter, reference_vectors=ref, reference_coords=coords, k=1), [[-1.0, 0.0]])
    everything = place(quarter, reference_vectors=ref, reference_coords=coords, k=50)
    assert everything[0, 1] > 0  # ref 2 pulls it up


def test_place_lands_new_cluster_members_near_their_cluster():
    ref, coords = _reference_map()
    centres = unit(np.random.default_rng(0).standard_normal((6, D))).astype(np.float64)
    labels = np.repeat(np.arange(6), 50)
    new, new_labels = clusters(5, centres, spread=0.04, seed=99)
    out = place(new, reference_vectors=ref, reference_coords=coords, k=10)
    assert np.abs(out).max() <= 1.0
    means = np.stack([coords[labels == c].mean(axis=0) for c in range(6)])
    nearest_centre = np.argmin(((out[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert np.array_equal(nearest_centre, new_labels)


def test_place_blocks_give_the_same_answer(monkeypatch):
    ref, coords = _reference_map()
    new = unit(np.random.default_rng(11).standard_normal((37, D)))
    whole = place(new, reference_vectors=ref, reference_coords=coords, k=7)
    monkeypatch.setattr(soundmap, "_BLOCK_ELEMENTS", 3 * len(ref))  # 3 new rows per block
    blocked = place(new, reference_vectors=ref, reference_coords=coords, k=7)
    np.testing.assert_allclose(blocked, whole, atol=1e-7)
    assert np.array_equal(place(new, reference_vectors=ref, reference_coords=coords, k=7), blocked)


def test_place_edge_cases():
    ref, coords = _reference_map(60)
    out = place(np.zeros((0, D), np.float32), reference_vectors=ref, reference_coords=coords)
    assert out.shape == (0, 2) and out.dtype == np.float32
    with pytest.raises(ValueError, match="empty map"):
        place(ref[:1], reference_vectors=ref[:0], reference_coords=coords[:0])
    with pytest.raises(ValueError, match="dimensions"):
        place(ref[:1, :10], reference_vectors=ref, reference_coords=coords)
    with pytest.raises(ValueError, match="reference_coords"):
        place(ref[:1], reference_vectors=ref, reference_coords=coords[:5])
    with pytest.raises(ValueError, match="k"):
        place(ref[:1], reference_vectors=ref, reference_coords=coords, k=0)
    single = place(ref[:3], reference_vectors=ref[:1], reference_coords=np.array([[0.25, -0.5]]), k=10)
    np.testing.assert_array_equal(single, np.tile([[0.25, -0.5]], (3, 1)))
