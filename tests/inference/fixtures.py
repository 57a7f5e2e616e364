"""Shared fixtures for the inference tests: tiny checkpoints built without training, and test media."""

from __future__ import annotations

import fractions
from pathlib import Path

import lightning
import numpy as np
import pytest
import torch

from src.models.indi_module import INDIModule

TINY_NET = {"_target_": "src.models.unet.UNet", "width": 8, "depth": 1}


def save_tiny_checkpoint(
    path: Path, steps: int = 2, extra_hparams: dict | None = None, seed: int = 0, identity: bool = False
) -> Path:
    """A Lightning-format checkpoint of a tiny residual UNet.

    By default the output head is randomised, so tiling, batching and export are tested on a net that changes
    the image; ``identity=True`` zeroes the head, so the net returns its input exactly (for output-side tests
    such as dithering).
    """
    torch.manual_seed(seed)
    m = INDIModule(net=TINY_NET, indi={"steps": steps})
    with torch.no_grad():
        if identity:
            m.net.head.weight.zero_()
            m.net.head.bias.zero_()
        else:
            m.net.head.weight.normal_(0.0, 0.05)
            m.net.head.bias.normal_(0.0, 0.01)
        if m.ema is not None:
            m.ema.module.load_state_dict(m.net.state_dict())
    hp = dict(m.hparams)
    hp.update(extra_hparams or {})
    torch.save(
        {"state_dict": m.state_dict(), "hyper_parameters": hp, "pytorch-lightning_version": lightning.__version__}, path
    )
    return path


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


@pytest.fixture(scope="session")
def identity_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "identity.ckpt", identity=True)


def make_clip(
    path: Path,
    n: int = 12,
    w: int = 64,
    h: int = 48,
    fps: int = 12,
    audio: bool = True,
    subtitles: bool = True,
    rotation: int = 0,
) -> Path:
    """A short H.264 clip with banded frames, an AAC audio stream and a subtitle stream (mov_text in MP4,
    SubRip in MKV), built with PyAV."""
    import av

    out = av.open(str(path), "w")
    v = out.add_stream("libx264", rate=fps, options={"crf": "18"})
    v.width, v.height, v.pix_fmt = w, h, "yuv420p"
    if rotation:
        v.set_display_rotation(rotation)
    a = out.add_stream("aac", rate=48000) if audio else None
    if a is not None:
        a.layout = "mono"
    s = None
    if subtitles:
        s = out.add_mux_stream("mov_text" if path.suffix == ".mp4" else "subrip")
        s.time_base = fractions.Fraction(1, 1000)
    out.metadata["title"] = "test clip"
    ramp = (np.linspace(0, 255, w)[None, :] // 16 * 16).astype(np.uint8)
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[:, :, 0] = ramp
        img[:, :, 1] = (i * 20) % 256
        img[:, :, 2] = ramp[:, ::-1]
        f = av.VideoFrame.from_ndarray(img, format="rgb24")
        f.pts, f.time_base = i, fractions.Fraction(1, fps)
        out.mux(v.encode(f))
    out.mux(v.encode(None))
    if a is not None:
        t = np.arange(int(48000 * n / fps)) / 48000
        samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        for k in range(0, samples.shape[1], 1024):
            af = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, k : k + 1024]), format="fltp", layout="mono"
            )
            af.sample_rate, af.pts = 48000, k
            out.mux(a.encode(af))
        out.mux(a.encode(None))
    if s is not None:
        text = b"hello"
        packet = av.Packet((len(text).to_bytes(2, "big") + text) if path.suffix == ".mp4" else text)
        packet.pts = packet.dts = 100
        packet.duration = 500
        packet.time_base = fractions.Fraction(1, 1000)
        packet.stream = s
        out.mux(packet)
    out.close()
    return path
