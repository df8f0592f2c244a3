"""CLAP's log-mel input, computed with torch on the model's own device.

transformers' ``ClapFeatureExtractor`` computes it in numpy, one STFT frame at a
time: 15-40 ms a window on one CPU core. On an H200 the full-size model takes
0.3 ms a window in bfloat16, so there the extractor, not the model, would set the
pace (docs/BENCHMARKS.md, "CLAP on a GPU"). ``LogMel`` computes the same numbers
as one batched call where the model runs, 0.2-0.3 ms a window on that GPU:

* frames: 1024 samples, hop 480, centred with reflect padding (1,001 frames for
  a 10 s window), the extractor's periodic Hann window;
* the STFT in float64, like the extractor; power (magnitude squared);
* the extractor's own mel filters (Slaney for ``rand_trunc`` models, HTK for
  fusion models), floored at 1e-10, then 10 * log10;
* float32 out, shaped as the extractor shapes it: (b, 1, frames, mels), or the
  same mel four times, (b, 4, frames, mels), for fusion models (an exact 10 s
  window is never "longer", so fusion's random crops never happen).

It agrees with the extractor to within one float32 step (tests/clap/test_melspec.py).
It is used only where the model runs on CUDA: on a CPU it is no faster than the
extractor, which also keeps vectors bit-identical to those of earlier imports.
"""

from __future__ import annotations

import numpy as np

from engine.windows import WINDOW_SAMPLES

MEL_FLOOR = 1e-10  # the extractor's mel_floor and min_value (-100 dB)


class LogMel:
    """``batch`` float32 (b, 480000) at 48 kHz -> the model's input features on ``device``."""

    def __init__(self, extractor, *, fusion: bool, device: str):
        import torch
        from transformers.audio_utils import window_function

        self.device = device
        self.fusion = fusion
        self.n_fft = int(extractor.fft_window_size)
        self.hop = int(extractor.hop_length)
        filters = extractor.mel_filters if fusion else extractor.mel_filters_slaney  # (n_fft // 2 + 1, mels)
        self._filters = torch.from_numpy(np.ascontiguousarray(filters.T, dtype=np.float64)).to(device)
        self._window = torch.from_numpy(window_function(self.n_fft, "hann").astype(np.float64)).to(device)

    def __call__(self, batch: np.ndarray):
        import torch

        if batch.ndim != 2 or batch.shape[1] != WINDOW_SAMPLES:
            raise ValueError(f"expected windows of shape (n, {WINDOW_SAMPLES}), got {batch.shape}")
        audio = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        if not bool(torch.isfinite(audio).all()):  # checked here, on the device (Embedder.checks_finite_itself)
            raise ValueError("audio windows contain NaN or infinite samples")
        spectrum = torch.stft(audio.to(torch.float64), n_fft=self.n_fft, hop_length=self.hop, window=self._window,
                              center=True, pad_mode="reflect", onesided=True, return_complex=True)
        power = spectrum.real.square() + spectrum.imag.square()  # (b, bins, frames)
        mel = torch.matmul(self._filters, power).clamp_(min=MEL_FLOOR)  # (b, mels, frames)
        features = (10.0 * torch.log10(mel)).transpose(1, 2).to(torch.float32)  # (b, frames, mels)
        channels = 4 if self.fusion else 1
        return features.unsqueeze(1).expand(-1, channels, -1, -1).contiguous()
