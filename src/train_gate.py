"""Fit the contour pass's learned gate (:mod:`src.baselines.contour_gate`): ``python -m src.train_gate``.

The examples are the training photos (``data/photos/train``, from ``python -m src.data.fetch``; never the
held-out test photos the benchmarks score) restored by the network of ``--checkpoint``, under the quality
benchmark's degradations: 512 px crops banded in YCbCr (luma 6 / chroma 5 bits), in RGB at 5 bits then
JPEG, through H.264 at CRF 30, 35 or 40, and left clean; and 1920 x 1080 frames of the wallpapers and of
procedural smooth scenes banded like streamed video. For every block where the contour pass proposes a
ramp, the gate learns the share ``w`` of it that brings the block mean closest to the clean one: the loss
is ``(w * change - (clean - block))^2``, each degradation weighted by its mean squared target (so each
counts alike), H.264 and clean crops more (their plateaus are the ones a ramp must not touch) and the
streamed frames twice (the wide bands the pass is for). About 9 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from src.utils.errors import DebandError

#: degradation -> its weight in the loss (over its mean squared target)
SET_WEIGHTS = {"ycbcr_6_5": 1.0, "rgb_jpeg": 1.0, "h264": 2.5, "none": 2.0, "stream_1080p": 2.0}
#: procedural 1080p scenes beside the wallpapers' frames (kind, seed); the figures use seed 0 and 1
SCENES = (("sky", 11), ("linear", 12), ("radial", 13), ("soft_shapes", 14), ("sky_structures", 15), ("noise_field", 16))
#: a batch: this many windows of PATCH x PATCH blocks
BATCH, PATCH = 32, 64
#: the gate's layers' dilations over the block grid: it sees 31 x 31 blocks (248 px of luma, 124 of chroma)
DILATIONS = (1, 2, 4, 8)


def build_examples(photos: Path, checkpoint: str, frame: tuple[int, int] = (1080, 1920), say=print) -> dict:  # noqa: ANN001
    """``{degradation: [(features, mask, change, target), ...]}`` (per image and plane, see
    :func:`~src.baselines.contour.gate_examples`)."""
    import torch

    from src.baselines.contour import ContourConfig, gate_examples
    from src.bench.quality import load_images, make_degradations
    from src.data.degradations import h264_roundtrip
    from src.data.sources import smooth_image
    from src.inference.debander import Debander

    d = Debander.from_checkpoint(checkpoint, contour=False)
    degs = {g.name: g for g in make_degradations(names=tuple(SET_WEIGHTS), stream_frame=frame)}
    cfg = ContourConfig(gate="rules")
    rng = np.random.default_rng(0)
    wallpapers = photos / "lomiri"
    crops = []
    for name, img in load_images(wallpapers, 768):
        for j, (y, x) in enumerate(((0, 0), (0, 256), (256, 0), (256, 256))):  # four 512 px crops each
            crops.append((f"{name}#{j}", img[:, y : y + 512, x : x + 512].contiguous()))
    if (photos / "skimage").is_dir():
        crops += load_images(photos / "skimage", 512)
    frames = load_images(wallpapers, frame)
    for kind, seed in SCENES:
        px = smooth_image(kind, seed, frame).pixels
        px = px.astype(np.float32) / np.iinfo(px.dtype).max
        frames.append((f"{kind}{seed}", torch.from_numpy(px).permute(2, 0, 1).contiguous()))
    out: dict[str, list] = {k: [] for k in SET_WEIGHTS}
    for key in SET_WEIGHTS:
        t0 = time.perf_counter()
        for _name, clean in frames if key == "stream_1080p" else crops:
            if key == "h264":
                banded = h264_roundtrip(clean, int(rng.choice([30, 35, 40]))).float()
            else:
                banded = degs[key].apply(clean).float()
            with torch.inference_mode():
                restored = d.deband_batch(banded[None], contour=False)[0]
            out[key] += [e for e in gate_examples(restored, banded, clean, cfg) if e[1].any()]
        say(f"{key}: {len(out[key])} planes with ramps ({time.perf_counter() - t0:.0f} s)")
    return out


def fit_gate(  # noqa: ANN201
    examples: dict,
    steps: int = 4000,
    width: int = 16,
    layers: int = 5,
    dilations: tuple[int, ...] | None = DILATIONS,
    patch: int = PATCH,
    seed: int = 0,
    say=print,  # noqa: ANN001
):
    """A :class:`~src.baselines.contour_gate.ContourGate` fitted to ``examples`` (:func:`build_examples`)."""
    import torch

    from src.baselines.contour_gate import ContourGate

    keys = [k for k in SET_WEIGHTS if examples.get(k)]
    if not keys:
        raise DebandError("no training examples: no image gave the contour pass a ramp")
    feats = np.concatenate([f[:, m].T for k in keys for f, m, _, _ in examples[k]])
    weight = {}
    for k in keys:
        sq = np.concatenate([t[m] ** 2 for _, m, _, t in examples[k]])
        weight[k] = SET_WEIGHTS[k] / max(float(sq.mean()), 1e-9)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gate = ContourGate(width, layers, dilations)
    gate.mean.copy_(torch.from_numpy(feats.mean(0)))
    gate.std.copy_(torch.from_numpy(feats.std(0) + 1e-6))
    opt = torch.optim.Adam(gate.parameters(), 2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)

    def window(a: np.ndarray, y: int, x: int) -> np.ndarray:
        a = a[..., y : y + patch, x : x + patch]
        pad = [(0, 0)] * (a.ndim - 2) + [(0, patch - a.shape[-2]), (0, patch - a.shape[-1])]
        return np.pad(a, pad)

    run = None
    for step in range(steps):
        cols = [[] for _ in range(5)]
        for _ in range(BATCH):
            k = keys[rng.integers(len(keys))]
            f, m, c, t = examples[k][rng.integers(len(examples[k]))]
            y, x = rng.integers(max(m.shape[0] - patch, 0) + 1), rng.integers(max(m.shape[1] - patch, 0) + 1)
            for lst, a in zip(cols, (f, m.astype(np.float32), c, t)):
                lst.append(window(a, y, x))
            cols[4].append(weight[k])
        f, m, c, t = (torch.from_numpy(np.stack(a)) for a in cols[:4])
        m, c, t = m[:, None], c[:, None], t[:, None]
        w = gate(f, m)
        wk = torch.tensor(cols[4], dtype=torch.float32)[:, None, None, None]
        loss = (wk * m * (w * c - t) ** 2).sum() / m.sum().clamp_min(1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        value = loss.item()
        run = value if run is None else 0.98 * run + 0.02 * value
        if step % 500 == 0 or step == steps - 1:
            say(f"step {step + 1}/{steps}: loss {run:.4f}")
    return gate.eval()


def report(gate, examples: dict) -> str:  # noqa: ANN001
    """Per degradation, the blocks' summed squared error (codes^2) against the clean block means: no ramp,
    the hand rules, the fitted gate, and an oracle choosing each block's share from the reference."""
    import torch

    from src.baselines.contour_gate import FEATURES

    lines = ["| degradation | no ramp | hand rules | learned gate | oracle |", "|---|---|---|---|---|"]
    for k, rows in examples.items():
        tot = np.zeros(4)
        for f, m, c, t in rows:
            with torch.inference_mode():
                w = gate(torch.from_numpy(f)[None], torch.from_numpy(m)[None, None].float())[0, 0].numpy()
            rules = f[FEATURES.index("hand rules' weight")]
            with np.errstate(invalid="ignore", divide="ignore"):
                oracle = np.nan_to_num(np.clip(t / c, 0, 1))
            for i, share in enumerate((0.0, rules, w, oracle)):
                tot[i] += float((((share * c - t) ** 2)[m]).sum())
        lines.append(f"| {k} | " + " | ".join(f"{v:.0f}" for v in tot) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m src.train_gate", description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=Path, default=Path("data/photos/train"), help="training photos (lomiri/, skimage/)")
    p.add_argument("--checkpoint", default="default", help="the network whose outputs the gate sees")
    p.add_argument("-o", "--out", type=Path, default=Path("src/weights/contour_gate.pt"))
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.steps < 1:
        print("error: --steps must be >= 1", file=sys.stderr)
        return 2
    if not (args.photos / "lomiri").is_dir():
        print(f"error: no photos in {args.photos / 'lomiri'} (run `python -m src.data.fetch` first)", file=sys.stderr)
        return 2
    import torch

    from src.baselines.contour_gate import save_gate

    if args.threads:
        torch.set_num_threads(args.threads)
    examples = build_examples(args.photos, args.checkpoint)
    gate = fit_gate(examples, steps=args.steps)
    print(report(gate, examples))
    save_gate(gate, args.out, note=f"python -m src.train_gate --steps {args.steps} on {args.photos}")
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
