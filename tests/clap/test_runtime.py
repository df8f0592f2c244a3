"""Device and thread policy (engine.clap.runtime)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.clap import get_embedder, runtime
from engine.errors import ModelUnavailableError

pytestmark = pytest.mark.usefixtures("fresh_embedders")


@pytest.mark.parametrize("runnable, expected", [
    ([1], "all"), ([2], "all"), ([9, 9, 9, 9, 9], 1), ([None], "all"),
    ([3, 2], "all"),  # a thread runnable only for a moment (the server's event loop handing over a request)
    ([4, 3, 2], "all"),
    ([4, 3, 3, 2], "all"),  # the server's own threads winding down for a millisecond
    ([4, 3, 3, 3, 1], "all"),  # ... or for a few
])
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
    looks = iter(runnable)
    monkeypatch.setattr(runtime, "runnable_threads", lambda: next(looks))
    e.embed_text([f"a prompt seen while {runnable} threads were runnable"])
    assert next(looks, "all looked") == "all looked"  # no look more than needed
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


def test_a_gpu_gets_bigger_batches_unless_the_user_chose_a_size(monkeypatch):
    from engine.config import Settings

    monkeypatch.delenv("TRAUM_CLAP_BATCH_WINDOWS", raising=False)
    assert runtime.batch_windows_for(Settings(), "cpu") == 8
    assert runtime.batch_windows_for(Settings(), "cuda") == runtime.GPU_BATCH_WINDOWS == 128
    assert runtime.batch_windows_for(Settings(clap_batch_windows=16), "cuda") == 16
    # engine.cluster passes --batch-windows to its actors this way
    assert runtime.batch_windows_for(Settings().model_copy(update={"clap_batch_windows": 64}), "cuda") == 64
    monkeypatch.setenv("TRAUM_CLAP_BATCH_WINDOWS", "4")
    assert runtime.batch_windows_for(Settings(), "cuda") == 4


def test_the_loaded_model_takes_its_batch_size_from_the_rule(tiny_clap_settings, monkeypatch):
    monkeypatch.delenv("TRAUM_CLAP_BATCH_WINDOWS", raising=False)
    assert get_embedder(tiny_clap_settings).batch_windows == 8  # on the CPU
    assert get_embedder(tiny_clap_settings.model_copy(update={"clap_batch_windows": 3})).batch_windows == 3
    assert get_embedder(tiny_clap_settings).batch_windows == 8  # the same model, asked for again


_EMBED_ONE_PROMPT = """
import hashlib, sys
from pathlib import Path
import torch
from engine.clap.loader import get_embedder
from engine.config import Settings
if sys.argv[2] != "default":
    torch.set_num_threads(int(sys.argv[2]))
embedder = get_embedder(Settings(data_dir=Path(sys.argv[3]), clap_model=sys.argv[1], clap_device="cpu"))
print(hashlib.sha256(embedder.embed_text(["a steady tone"])[0].tobytes()).hexdigest())
"""


def test_a_prompt_gives_the_same_vector_in_every_process_whatever_its_threads(tiny_clap_dir, tmp_path):
    """MKL's fastest paths split sums by thread: without strict reproducibility (set by the engine on
    import) a fresh process on its default threads gave different last bits from one on one thread,
    and so search scores differed in the seventh digit between the server and a command."""
    environment = {key: value for key, value in os.environ.items() if key != "MKL_CBWR"}
    environment["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    runs = [subprocess.Popen([sys.executable, "-c", _EMBED_ONE_PROMPT, str(tiny_clap_dir), threads,
                              str(tmp_path / f"data{i}")], env=environment, stdout=subprocess.PIPE, text=True)
            for i, threads in enumerate(["default", "1", "default", "2"])]
    digests = {run.communicate(timeout=300)[0].strip() for run in runs}
    assert all(run.returncode == 0 for run in runs)
    assert len(digests) == 1
