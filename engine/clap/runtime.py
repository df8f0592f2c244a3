"""Device, precision and thread policy for CLAP forwards.

torch is imported inside functions (and "cpu" never imports it), so asking
what would be used stays cheap.
"""

from __future__ import annotations

import contextlib
import functools
import time
from pathlib import Path

from engine.errors import ModelUnavailableError

# Windows per forward on a GPU when TRAUM_CLAP_BATCH_WINDOWS is not set. Measured on an H200 with the
# full-size model in bfloat16 (docs/BENCHMARKS.md, "CLAP on a GPU"): 1,100-1,190 windows/s from 128 up,
# 580-670 at 16 and 840-940 at 32; 128 takes 3.1 GB of device memory, 256 takes 5.8 GB.
# On a CPU the setting's default (8) stands: bigger batches gain nothing there.
GPU_BATCH_WINDOWS = 128


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX).

    torch runs bf16 on any AVX512 CPU, but without these instructions it is
    emulated and slower than float32, so "auto" only picks bf16 when they exist.
    """
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return bool(flags & {"avx512_bf16", "amx_bf16"})
    return False


def resolve_device(requested: str) -> str:
    if requested == "cpu":
        return requested
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailableError(
            "TRAUM_CLAP_DEVICE is 'cuda' but torch sees no CUDA GPU.",
            hint="Set TRAUM_CLAP_DEVICE=auto or cpu, or install a CUDA build of torch.",
        )
    return requested


def resolve_precision(requested: str, device: str) -> str:
    """auto -> bfloat16 on CUDA with bf16 support or on a CPU with native bf16, else float32."""
    if requested != "auto":
        return requested
    if device == "cuda":
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if cpu_has_native_bf16() else "float32"


def batch_windows_for(settings, device: str) -> int:
    """Windows per model forward: TRAUM_CLAP_BATCH_WINDOWS where it is set, else the CPU default, or
    GPU_BATCH_WINDOWS when the model runs on CUDA."""
    if device == "cuda" and "clap_batch_windows" not in settings.model_fields_set:
        return GPU_BATCH_WINDOWS
    return int(settings.clap_batch_windows)


def one_blas_thread() -> None:
    """Keep numpy's BLAS (OpenBLAS) to one thread once torch's pool is running.

    On a few cores the two pools spin against each other: measured here on 2
    cores, ingest with embeddings ran 47x real time with both pools and 58x
    with one BLAS thread, and a search right after a text embedding took twice
    as long. Heavy matrix work goes through torch, so numpy loses little.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def runnable_threads() -> int | None:
    """Threads on this machine that are running or waiting for a core right now (Linux), else None."""
    try:
        with open("/proc/loadavg", "rb") as file:  # "0.51 0.85 0.93 3/221 12345": the 3
            return int(file.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None


# When a prompt looks at the machine's runnable threads: at once, then after each of these pauses
# (seconds), until one look finds no contention. A busy process is runnable at every look.
CONTENTION_LOOK_PAUSES_S = (0.0005, 0.0005, 0.0015, 0.003)


def contended(threads: int) -> bool:
    """Whether more than ``threads`` threads want a core at every look, over about 5.5 ms.

    One look is not enough: a thread that has just handed this one its work is still runnable
    for a moment (the server's event loop after passing on an API request, the client about to
    wait for the answer). In the server one look saw 3 or 4 runnable threads for 24 of 41
    prompts on an otherwise idle machine, so most prompts ran on one thread; three looks over
    1 ms still saw 3 for 12-22 % of prompts (the event loop and the server's own threads winding
    down), four over 2.5 ms for 0-16 %, and five over 5.5 ms for none of 300 (each of those
    windows was over by the fifth look). A busy process (an import, the browser drawing) is
    runnable at every look. Costs 0.5-5.5 ms, only while the first looks see contention.

    The CPU pressure stall time (/proc/pressure/cpu) is a worse judge: with one core kept busy it
    stayed flat across 20 of 33 windows where every look saw contention, and deciding by it made
    those searches slower (p50 382 ms against 267).
    """
    for pause in (*CONTENTION_LOOK_PAUSES_S, None):
        runnable = runnable_threads()
        if runnable is None or runnable <= threads:
            return False
        if pause is not None:
            time.sleep(pause)
    return True


@contextlib.contextmanager
def one_thread_when_contended(torch):
    """Run a short forward (a prompt) on one intra-op thread while other work wants the CPU.

    A two-thread forward meets at every operator, so when another process (the
    browser drawing the page, an import) holds a core, it waits whole time
    slices for its descheduled half. Measured here on 2 cores with one kept
    busy: a prompt took 49 ms median and 221 ms at worst on two threads, 34 and
    49 ms on one; on an idle machine two threads win, 23 ms against 36 ms. So
    the choice is made per call, from the count of runnable threads (which
    includes this one and, just after a forward, its own spinning helper).
    Called under the model lock, so no other forward sees the change.
    """
    threads = torch.get_num_threads()
    if threads < 2 or not contended(threads):
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
