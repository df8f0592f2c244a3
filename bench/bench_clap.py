"""Benchmark the CLAP embedder on CPU with a full-size, randomly initialised model.

The weights of laion/larger_clap_music_and_speech cannot be downloaded here, so
this builds the same architecture (HTSAT-base audio: patch_embeds_hidden_size
128, depths [2, 2, 12, 2], heads [4, 8, 16, 32], hidden 1024, no fusion;
RoBERTa-base text: 12 layers, hidden 768; projection 512) with random weights
and the BatchNorm trick, saves it with save_pretrained, and measures it through
the production path (engine.clap.get_embedder). Speed does not depend on
the weights' values; the float32/bfloat16 agreement on random weights is only
indicative.

Each precision runs in a fresh worker process so load time and peak RSS are
its own. Usage:

    .venv/bin/python bench/bench_clap.py --out bench/clap.json [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

SR = 48_000
N = 480_000

PROMPTS = [
    "warm analog synth pad with slow attack",
    "fast techno beat with heavy kick drum",
    "a solo acoustic guitar playing a folk melody",
    "female vocals over a soft piano ballad",
    "dark ambient drone with distant thunder",
    "upbeat funk bassline and brass section",
    "a dog barking in the rain",
    "lo-fi hip hop with vinyl crackle",
    "orchestral strings building to a climax",
    "crowd cheering at a football stadium",
    "jazz trio with brushed drums and upright bass",
    "glitchy electronic percussion",
    "a church organ playing a slow hymn",
    "birdsong in a quiet forest at dawn",
    "distorted electric guitar riff in drop d",
    "calm meditation music with singing bowls",
    "reggae offbeat guitar skank",
    "eighties synthwave with gated reverb snare",
    "a man speaking calmly in a podcast studio",
    "children laughing on a playground",
    "minimal house groove at 124 bpm",
    "epic trailer music with taiko drums",
    "bossa nova with nylon guitar and soft vocals",
    "heavy rain on a tin roof",
    "chiptune melody from an old video game",
    "string quartet playing a baroque piece",
    "deep dubstep wobble bass drop",
    "a cello playing a sad melody",
    "traffic noise on a busy city street",
    "country song with banjo and fiddle",
    "soulful gospel choir singing",
    "ticking clock in an empty room",
    "latin percussion with congas and timbales",
    "a flute playing over gentle harp arpeggios",
    "industrial metal with harsh vocals",
    "soft rain and distant church bells",
    "breakbeat drum and bass at 174 bpm",
    "a violin tuning up before a concert",
    "ocean waves crashing on a rocky shore",
    "smooth saxophone over a late night groove",
]


# --------------------------------------------------------------------------- build


def build_full_size(directory: Path) -> dict:
    import json as _json

    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
        ClapTextConfig,
        RobertaTokenizer,
    )

    started = time.perf_counter()
    # A BPE trained on the benchmark prompts, so prompts split into about one
    # token per word as with RoBERTa's real 50k vocabulary.
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(PROMPTS * 3, vocab_size=2000, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    model_json = _json.loads(bpe._tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model_json["merges"]]
    tokenizer = RobertaTokenizer(vocab=model_json["vocab"], merges=merges, model_max_length=512)

    text_config = ClapTextConfig()  # RoBERTa-base: 12 layers, hidden 768, vocab 50265, 514 positions
    audio_config = ClapAudioConfig(
        patch_embeds_hidden_size=128,
        hidden_size=1024,
        depths=[2, 2, 12, 2],
        num_attention_heads=[4, 8, 16, 32],
        enable_fusion=False,
    )
    config = ClapConfig(text_config=text_config.to_dict(), audio_config=audio_config.to_dict(), projection_dim=512)
    torch.manual_seed(0)
    model = ClapModel(config).eval()
    with torch.no_grad():
        bn = model.audio_model.audio_encoder.batch_norm
        bn.running_mean.fill_(-60.0)
        bn.running_var.fill_(625.0)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(directory)
    ClapProcessor(feature_extractor=ClapFeatureExtractor(), tokenizer=tokenizer).save_pretrained(directory)
    return {"params_m": round(params / 1e6, 1), "build_s": round(time.perf_counter() - started, 1)}


# --------------------------------------------------------------------------- signals


def varied_windows(n: int = 16) -> np.ndarray:
    t = np.arange(N) / SR
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:  # noise, white or low-passed
            x = rng.standard_normal(N) * (0.05 + 0.05 * i)
            if i % 8 == 4:
                x = np.convolve(x, np.ones(32) / 32, mode="same")
        elif kind == 1:  # sines and chords
            x = sum(0.3 * np.sin(2 * np.pi * f * t) for f in (110 * (i + 1), 165 * (i + 1), 220 * (i + 1)))
        elif kind == 2:  # click trains at different tempi
            x = np.zeros(N)
            x[:: int(SR * 60 / (60 + 10 * i))] = 1.0
        else:  # chirp with amplitude modulation
            x = 0.4 * np.sin(2 * np.pi * (100 * i + 300 * t) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.3 * i * t))
        out.append(x)
    return np.stack(out).astype(np.float32)


# --------------------------------------------------------------------------- worker


def stats(values: list[float]) -> dict:
    return {"median": round(float(np.median(values)), 1), "min": round(float(np.min(values)), 1)}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rss_split_mb() -> dict:
    """Current anonymous vs file-backed RSS. safetensors weights are mmap'd, so part
    of the RSS is page cache the kernel can drop, not memory the process owns."""
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("RssAnon", "RssFile")):
                name, value = line.split(":")
                out[name.lower() + "_mb"] = round(int(value.split()[0]) / 1024)
    except OSError:
        pass
    return out


def worker(model_dir: str, precision: str, threads: int, embeddings_out: str) -> dict:
    import torch

    torch.set_num_threads(threads)
    from engine.clap import get_embedder
    from engine.config import Settings

    result: dict = {"precision": precision, "threads": threads}
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    settings = Settings(clap_model=model_dir, clap_device="cpu", clap_precision=precision, clap_batch_windows=8)
    e = get_embedder(settings)
    result["load_s"] = round(time.perf_counter() - started, 2)  # includes hashing the weights for the model id
    result["model_id"] = e.model_id
    result["rss_after_load_mb"] = round(peak_rss_mb(), 0)
    result["rss_before_load_mb"] = round(rss_before, 0)

    windows = varied_windows(16)
    result["loadavg_start"] = round(os.getloadavg()[0], 2)
    # Medians and minima over repeated rounds: on a shared 2-core machine any
    # other process stalls torch's threads, and the minimum shows the clean cost.
    e.batch_windows = 8
    e.embed_audio(windows[:8])  # warm-up (first calls allocate and pick kernels)
    per_window = []
    for _ in range(3):
        t0 = time.perf_counter()
        embs = e.embed_audio(windows)
        per_window.append((time.perf_counter() - t0) * 1000 / len(windows))
    result["audio_ms_per_window_b8"] = stats(per_window)

    e.batch_windows = 1
    e.embed_audio(windows[:1])
    per_call = []
    for i in range(12):
        t0 = time.perf_counter()
        e.embed_audio(windows[i : i + 1])
        per_call.append((time.perf_counter() - t0) * 1000)
    result["audio_ms_per_window_b1"] = stats(per_call)

    fe = []
    for i in range(8):
        t0 = time.perf_counter()
        e._features(windows[i : i + 1], sampling_rate=SR, truncation="rand_trunc", padding="repeatpad",
                    return_tensors="np")
        fe.append((time.perf_counter() - t0) * 1000)
    result["feature_extractor_ms_per_window"] = stats(fe)
    np.save(embeddings_out, embs)

    e.embed_text(["warm-up prompt"])
    lat = []
    tokens = []
    for p in PROMPTS:  # all distinct: every call is a cache miss and runs the model
        tokens.append(len(e._tokenizer(p)["input_ids"]))
        t0 = time.perf_counter()
        e.embed_text([p])
        lat.append((time.perf_counter() - t0) * 1000)
    result["text_ms_p50"] = round(float(np.percentile(lat, 50)), 1)
    result["text_ms_p95"] = round(float(np.percentile(lat, 95)), 1)
    result["text_ms_min"] = round(float(np.min(lat)), 1)
    result["text_tokens_mean"] = round(float(np.mean(tokens)), 1)
    t0 = time.perf_counter()
    for p in PROMPTS:
        e.embed_text([p])
    result["text_cached_us"] = round((time.perf_counter() - t0) * 1e6 / len(PROMPTS), 1)
    result.update(compute_bound(e, precision))
    result["peak_rss_mb"] = round(peak_rss_mb(), 0)
    result["rss_end"] = rss_split_mb()
    result["loadavg_end"] = round(os.getloadavg()[0], 2)
    return result


def compute_bound(e, precision: str) -> dict:
    """What one window costs in arithmetic, and the fastest this CPU multiplies matrices
    in this precision: together, the floor under the model's time per window."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    features = e._prepare_audio(varied_windows(1))
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        e._forward_audio(features)
    a, b = torch.randn(8192, 1024, dtype=dtype), torch.randn(1024, 4096, dtype=dtype)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    gflop = counter.get_total_flops() / 1e9
    peak = 2 * 8192 * 1024 * 4096 / best / 1e9
    return {"gflop_per_window": round(gflop, 1), "matmul_peak_gflops": round(peak, 0),
            "matmul_floor_ms_per_window": round(gflop / peak * 1000, 1)}


# --------------------------------------------------------------------------- main


def run_child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=REPO_ROOT,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"child {args[:2]} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="write results as JSON here")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model-dir", help="reuse an already built model directory")
    ap.add_argument("--_build", help=argparse.SUPPRESS)
    ap.add_argument("--_worker", nargs=3, metavar=("DIR", "PRECISION", "NPY"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args._build:
        print(json.dumps(build_full_size(Path(args._build))))
        return
    if args._worker:
        print(json.dumps(worker(args._worker[0], args._worker[1], args.threads, args._worker[2])))
        return

    with tempfile.TemporaryDirectory(prefix="bench_clap_") as tmp:
        model_dir = args.model_dir or str(Path(tmp) / "clap")
        build = {} if args.model_dir else run_child(["--_build", model_dir])
        results = {}
        for precision in ("float32", "bfloat16"):
            npy = str(Path(tmp) / f"{precision}.npy")
            results[precision] = run_child(["--_worker", model_dir, precision, npy, "--threads", str(args.threads)])
        a, b = (np.load(str(Path(tmp) / f"{p}.npy")) for p in ("float32", "bfloat16"))
        cos = np.sum(a * b, axis=1)
        sims = a @ a.T
        report = {
            "model": "random-init ClapModel with the architecture of laion/larger_clap_music_and_speech",
            "build": build,
            "cpu_native_bf16": __import__("engine.clap", fromlist=["x"]).cpu_has_native_bf16(),
            "results": results,
            "cos_f32_vs_bf16": {"min": round(float(cos.min()), 5), "mean": round(float(cos.mean()), 5),
                                "windows": len(cos)},
            "cos_between_different_windows_f32": {
                "mean": round(float(sims[~np.eye(len(a), dtype=bool)].mean()), 3),
                "max": round(float(sims[~np.eye(len(a), dtype=bool)].max()), 3),
            },
        }

    f, h = results["float32"], results["bfloat16"]
    def mm(d):
        return f"{d['median']} ({d['min']})"

    def split(r):
        return f"{r['rss_end'].get('rssanon_mb', '?')} / {r['rss_end'].get('rssfile_mb', '?')}"

    rows = [
        ("model load (s, incl. weight hash)", f["load_s"], h["load_s"]),
        ("audio ms / 10 s window, batch 1", mm(f["audio_ms_per_window_b1"]), mm(h["audio_ms_per_window_b1"])),
        ("audio ms / 10 s window, batch 8", mm(f["audio_ms_per_window_b8"]), mm(h["audio_ms_per_window_b8"])),
        ("  of which ClapFeatureExtractor (ms)", mm(f["feature_extractor_ms_per_window"]),
         mm(h["feature_extractor_ms_per_window"])),
        ("text prompt ms p50", f["text_ms_p50"], h["text_ms_p50"]),
        ("text prompt ms p95", f["text_ms_p95"], h["text_ms_p95"]),
        ("text prompt ms min", f["text_ms_min"], h["text_ms_min"]),
        ("text prompt, cached (µs)", f["text_cached_us"], h["text_cached_us"]),
        ("GFLOP per window (audio tower)", f["gflop_per_window"], h["gflop_per_window"]),
        ("matrix product peak (GFLOP/s)", f["matmul_peak_gflops"], h["matmul_peak_gflops"]),
        ("  floor: ms per window at that peak", f["matmul_floor_ms_per_window"], h["matmul_floor_ms_per_window"]),
        ("peak RSS (MB)", f["peak_rss_mb"], h["peak_rss_mb"]),
        ("RSS at end: anon / file-backed (MB)", split(f), split(h)),
        ("load average during run", f"{f['loadavg_start']}-{f['loadavg_end']}",
         f"{h['loadavg_start']}-{h['loadavg_end']}"),
    ]
    print(f"\nCLAP benchmark, {args.threads} torch threads, params {build.get('params_m', '?')} M\n")
    print("timings: median (min)\n")
    print("| measure | float32 | bfloat16 |\n|---|---|---|")
    for name, x, y in rows:
        print(f"| {name} | {x} | {y} |")
    c = report["cos_f32_vs_bf16"]
    print(f"\ncosine float32 vs bfloat16 over {c['windows']} windows: min {c['min']}, mean {c['mean']}")
    d = report["cos_between_different_windows_f32"]
    print(f"cosine between different windows (float32): mean {d['mean']}, max {d['max']}")
    print(f"prompt length: {f['text_tokens_mean']} tokens on average")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
