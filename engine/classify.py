"""Categories for tracks, from a model's embeddings (``engine.categories`` holds the vocabulary).

A model's category vectors are its text embedding of the prompt ensembles,
computed once per model and vocabulary version and saved in the store, so
later processes only read them. Categories are extra: a model whose prompts
cannot be embedded is logged and leaves tracks uncategorised; it never fails
an import.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine import categories
from engine.search import embedding_matrix
from engine.store import CategoryScores, Store
from engine.vectors import PIPELINE_VERSION

log = logging.getLogger(__name__)

BATCH = 8192  # tracks per matrix product and write when categorising stored embeddings


class Categoriser:
    """One model's category vectors and the scoring of its track vectors."""

    def __init__(self, model_id: str, vectors: np.ndarray):
        self.model_id = model_id
        self.vectors = vectors  # (categories, D), unit rows

    def scores(self, vectors: np.ndarray, hints: list[str | None]) -> list[CategoryScores]:
        """CategoryScores for unit track vectors (N, D) with their path hints (N,)."""
        probabilities = categories.score(vectors=vectors, categories=self.vectors, hints=hints)
        return [CategoryScores(self.model_id, categories.VERSION, row, categories.members(row))
                for row in probabilities]


_cache: dict[str, Categoriser] = {}
_cache_lock = threading.Lock()


def categoriser_for(store: Store, embedder) -> Categoriser | None:
    """The embedder's model's Categoriser, from the store or by embedding the prompts (then saved);
    None when that fails."""
    with _cache_lock:
        found = _cache.get(embedder.model_id)
        if found is not None:
            return found
        try:
            vectors = store.descriptions.category_vectors(embedder.model_id, categories.VERSION)
            if vectors is None or vectors.shape != (len(categories.NAMES), embedder.dim):
                vectors = categories.category_vectors(np.asarray(embedder.embed_text(categories.prompts())))
                store.descriptions.save_category_vectors(embedder.model_id, categories.VERSION, vectors)
        except Exception:
            log.exception("could not embed the category prompts with %s; tracks stay uncategorised",
                          embedder.model_id)
            return None
        _cache[embedder.model_id] = Categoriser(embedder.model_id, vectors)
        return _cache[embedder.model_id]


def categorise_library(store: Store, embedder) -> int:
    """Score every track with an embedding from the model but no current category scores from it,
    and make it the model reads show. Returns how many tracks were scored."""
    categoriser = categoriser_for(store, embedder)
    if categoriser is None:
        return 0
    store.descriptions.set_category_model(embedder.model_id)
    ids = store.descriptions.uncategorised(embedder.model_id, PIPELINE_VERSION, categories.VERSION)
    if not ids:
        return 0
    # A few tracks are looked up by id; many are one read of the model's rows (id lists over a
    # thousand are scans: one per batch cost twice the single read at 100k tracks).
    wanted = ids if len(ids) <= 1000 else None
    table = store.embeddings.table(embedder.model_id, PIPELINE_VERSION, wanted)
    if wanted is None:
        table = table.filter(pc.is_in(table.column("track_id"), pa.array(ids)))
    for start in range(0, table.num_rows, BATCH):
        part = table.slice(start, BATCH)
        batch = part.column("track_id").to_pylist()
        hints = store.descriptions.name_categories(batch)
        scored = categoriser.scores(embedding_matrix(part), [hints.get(track_id) for track_id in batch])
        store.descriptions.save_categories(list(zip(batch, scored)))
    return table.num_rows
