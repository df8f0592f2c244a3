import numpy as np

from engine.store import EmbeddingWrite, Store
from tests.store.helpers import add, record


def test_window_lookups_by_key_and_by_scan_agree(tmp_path, monkeypatch):
    store = Store(tmp_path)
    rng = np.random.default_rng(1)
    ids = [f"{i:064x}" for i in range(5)]
    for n, track_id in enumerate(ids, start=1):
        add(store, record(track_id))
        rows = rng.standard_normal((n, 8)).astype(np.float32)
        store.embeddings.save(track_id, EmbeddingWrite("m", 1, rows[0], rows, [float(i) for i in range(n)],
                                                       [i + 10.0 for i in range(n)]))
    by_key = store.embeddings.windows("m", ids[1:4])
    monkeypatch.setattr("engine.store.embeddings.WINDOW_KEY_LOOKUP_LIMIT", 2)
    by_scan = store.embeddings.windows("m", ids[1:4])
    assert sorted(by_key) == sorted(by_scan) == sorted(ids[1:4])
    for track_id in ids[1:4]:
        assert np.array_equal(by_key[track_id].embeddings, by_scan[track_id].embeddings)
    assert store.embeddings.windows("other model", ids) == {}
