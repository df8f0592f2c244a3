"""Device and thread policy (engine.clap.runtime)."""

from __future__ import annotations

import pytest

from engine.clap import get_embedder, runtime
from engine.errors import ModelUnavailableError

pytestmark = pytest.mark.usefixtures("fresh_embedders")


@pytest.mark.parametrize("runnable, expected", [(1, "all"), (2, "all"), (9, 1), (None, "all")])
def test_prompts_run_on_one_thread_only_while_the_cpu_is_contended(tiny_clap_settings, monkeypatch, runnable,
                                                                    expected):
    import torch

    e = get_embedder(tiny_clap_settings)
    threads = torch.get_num_threads()
    if threads < 2:
        pytest.skip("one intra-op thread already: nothing to reduce")
    seen = []
    original = e._embed_text_batch

    def spy(texts):
        seen.append(torch.get_num_threads())
        return original(texts)

    monkeypatch.setattr(e, "_embed_text_batch", spy)
    monkeypatch.setattr(runtime, "runnable_threads", lambda: runnable)
    e.embed_text([f"a prompt seen while {runnable} threads were runnable"])
    assert seen == [threads if expected == "all" else expected]
    assert torch.get_num_threads() == threads  # restored for everything else


def test_runnable_threads_reads_this_machine():
    runnable = runtime.runnable_threads()
    assert runnable is None or runnable >= 1  # at least this thread, where /proc exists


def test_explicit_cuda_without_gpu_is_a_clear_error(tiny_clap_settings):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(ModelUnavailableError) as info:
        get_embedder(tiny_clap_settings.model_copy(update={"clap_device": "cuda"}))
    assert "TRAUM_CLAP_DEVICE" in str(info.value)
