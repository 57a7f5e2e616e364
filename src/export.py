"""Export a checkpoint for inference: ``python -m src.export CHECKPOINT -o model.pt`` (or ``model.onnx``).

- ``.pt``: the self-contained torch format of :mod:`src.inference.weights` (net config + EMA weights +
  schedule + recommended steps), a few MB, loaded with ``weights_only=True`` and without Lightning
  (the CLI starts ~3 s faster than from a ``.ckpt``).
- ``.onnx``: one network evaluation ``F(x, t)`` with dynamic batch and size (sizes that are multiples of the
  UNet's padding multiple; the runner pads), the schedule as JSON metadata. Needs ``onnx`` and ``onnxscript``
  to export and ``onnxruntime`` to run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn

from src.inference.weights import LoadedWeights, export_payload, load_weights
from src.utils.atomic import atomic_output
from src.utils.errors import ConfigError, DataError, DebandError

__all__ = ["export_torch", "export_onnx", "main"]


def export_torch(weights: LoadedWeights, out: Path, deband_steps: int | None = None, half: bool = False) -> Path:
    """Write the self-contained ``.pt`` (atomically); ``half`` stores the weights as float16."""
    payload = export_payload(weights, deband_steps, half=half)
    with atomic_output(out) as tmp:
        torch.save(payload, tmp)
    return out


class _Step(nn.Module):
    """``F(x, t)`` with ``t`` ``(B,)``: the graph ONNX holds."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(x, t)


def pad_multiple(net: nn.Module) -> int:
    """The size multiple the UNet pads to (``unshuffle * 2^depth``), 1 for other nets."""
    return int(getattr(net, "unshuffle", 1)) * 2 ** int(getattr(net, "depth", 0))


def export_onnx(weights: LoadedWeights, out: Path, deband_steps: int | None = None, opset: int = 18) -> Path:
    """Write ``F(x, t)`` as ONNX with dynamic batch/height/width and the schedule in the metadata."""
    try:
        import onnx
    except ImportError as e:
        raise DataError("ONNX export needs the onnx and onnxscript packages: pip install onnx onnxscript") from e
    payload = export_payload(weights, deband_steps)
    net = weights.net.float().cpu().eval()
    m = pad_multiple(net)
    step = _Step(net).eval()
    x = torch.rand(2, 3, 4 * m, 6 * m)
    t = torch.ones(2)
    # sizes are declared as multiples of m: then the UNet's "pad to a multiple" is a no-op the exporter can prove
    hb, wb = torch.export.Dim("h_blocks", min=1, max=4096), torch.export.Dim("w_blocks", min=1, max=4096)
    batch = torch.export.Dim("batch", min=1, max=1024)
    dynamic_shapes = {"x": {0: batch, 2: m * hb, 3: m * wb}, "t": {0: batch}}
    with atomic_output(out) as tmp:
        with torch.no_grad():
            program = torch.onnx.export(
                step,
                (x, t),
                None,
                dynamo=True,
                input_names=["x", "t"],
                output_names=["y"],
                dynamic_shapes=dynamic_shapes,
                opset_version=opset,
                verbose=False,
            )
        model = program.model_proto
        meta = {k: payload[k] for k in ("net", "indi", "deband_steps", "source")}
        meta["multiple"] = m
        entry = model.metadata_props.add()
        entry.key, entry.value = "indi_deband", json.dumps(meta)
        onnx.save_model(model, str(tmp))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m src.export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("checkpoint", help="a Lightning .ckpt, an exported .pt, or 'default'")
    p.add_argument("-o", "--output", required=True, type=Path, help="model.pt or model.onnx")
    p.add_argument(
        "--deband-steps",
        type=int,
        default=None,
        help="recommended INDI steps stored in the file (default: the checkpoint's)",
    )
    p.add_argument(
        "--half",
        action="store_true",
        help=".pt only: store the weights as float16 (half the size; loaded back into float32)",
    )
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    args = p.parse_args(argv)
    try:
        if args.deband_steps is not None and args.deband_steps < 1:
            raise ConfigError(f"--deband-steps must be >= 1, got {args.deband_steps}")
        if args.output.exists() and not args.overwrite:
            raise DataError(f"'{args.output}' already exists; pass --overwrite to replace it")
        suffix = args.output.suffix.lower()
        if suffix not in (".pt", ".onnx"):
            raise ConfigError(f"the output must end in .pt or .onnx, got '{args.output.name}'")
        weights = load_weights(args.checkpoint)
        print(f"exporting weights: {weights.source}", file=sys.stderr)
        if args.half and suffix != ".pt":
            raise ConfigError("--half applies to .pt exports only")
        if suffix == ".pt":
            export_torch(weights, args.output, args.deband_steps, half=args.half)
        else:
            export_onnx(weights, args.output, args.deband_steps, args.opset)
    except DebandError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    size = args.output.stat().st_size / 1e6
    print(f"wrote {args.output} ({size:.1f} MB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
