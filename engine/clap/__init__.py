"""CLAP embedders: 10 s windows of 48 kHz audio and text prompts -> unit vectors.

Two backends share one interface (:class:`Embedder`):

* ``transformers`` (default): ``ClapModel`` from a local directory or a hub id,
  safetensors only.
* ``laion``: the original ``laion_clap`` package with a pickled ``.pt``
  checkpoint. Only imported when the user explicitly chooses it.

Package map (dependencies point down the list, never up):

* ``loader``: the process-wide model (:func:`get_embedder`, remembered
  failures) and :func:`model_status`, a health view that never loads.
* ``transformers_backend`` / ``laion_backend``: the two embedders.
* ``base``: the :class:`Embedder` interface, batching and the text cache.
* ``source``: where a model comes from (local directory, hub cache, download)
  and its content-hash id.
* ``runtime``: device, precision and thread policy.

torch / transformers / huggingface_hub are imported inside functions so that
importing this package (CLI start-up, dashboard pages, model_status) stays cheap.
"""

from engine.clap.base import Embedder
from engine.clap.laion_backend import LaionClapEmbedder
from engine.clap.loader import get_embedder, model_status, reset_embedders
from engine.clap.runtime import cpu_has_native_bf16, resolve_device, resolve_precision
from engine.clap.transformers_backend import TransformersClapEmbedder

__all__ = [
    "Embedder",
    "LaionClapEmbedder",
    "TransformersClapEmbedder",
    "get_embedder",
    "model_status",
    "reset_embedders",
    "resolve_device",
    "resolve_precision",
    "cpu_has_native_bf16",
]
