"""Finding and loading weights: Lightning checkpoints, the self-contained export format, and ONNX.

Export format (``python -m src.export CKPT -o model.pt``): a ``torch.save``'d dict of plain data, loadable
with ``weights_only=True`` (no pickled code)::

    {"format": "indi-deband", "version": 1, "net": {"_target_": "src.models.unet.UNet", ...},
     "state_dict": <EMA weights>, "indi": {<INDISchedule kwargs>}, "deband_steps": int | None,
     "source": "<checkpoint it came from>"}

ONNX files (``-o model.onnx``) hold one network evaluation ``F(x, t)``; the same dict minus the weights is
stored as JSON in the model's metadata (key ``indi_deband``), and the sampler loop runs in Python.
"""

from __future__ import annotations

import glob
import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from src.models.indi import INDISchedule
from src.utils.errors import DataError

__all__ = ["EXPORT_FORMAT", "LoadedWeights", "resolve_weights", "load_weights"]

EXPORT_FORMAT = "indi-deband"
#: Network classes an exported file may name (instantiating arbitrary ``_target_``s would run arbitrary code).
ALLOWED_TARGET_PREFIX = "src.models."
PACKAGE_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
TRAIN_HINT = (
    "train one with `python -m src.train experiment=fft_indi` (from the repository root) or pass --checkpoint PATH"
)


@dataclass
class LoadedWeights:
    """A network ready for inference plus its sampler.

    Attributes:
        net: ``F(x (B, 3, H, W), t (B,)) -> (B, 3, H, W)`` in eval mode (an ``nn.Module``, or a callable for ONNX).
        schedule: the INDI schedule the net was trained with.
        deband_steps: the recommended number of steps, or None for the schedule's.
        source: the file the weights came from.
        kind: ``lightning``, ``export`` or ``onnx``.
        net_config: the network's Hydra config (``_target_`` + kwargs), for re-export.
        indi_config: the INDISchedule kwargs.
    """

    net: Any
    schedule: INDISchedule
    deband_steps: int | None
    source: Path
    kind: str
    net_config: dict[str, Any] | None = None
    indi_config: dict[str, Any] | None = None

    @property
    def default_steps(self) -> int:
        if self.deband_steps:
            return int(self.deband_steps)
        if not isinstance(self.schedule.grid, str):
            return len(self.schedule.grid) - 1
        return self.schedule.steps


def resolve_weights(path: str | os.PathLike | None = "default") -> Path:
    """The weights file for ``path``; ``"default"`` (or None) searches, in order:

    1. ``src/weights/default.pt`` then ``default.ckpt`` shipped in the package;
    2. the newest ``logs/train/runs/*/checkpoints/best-*.ckpt`` under the current directory
       (and under ``$INDI_ROOT`` when set), i.e. what ``python -m src.train experiment=fft_indi`` writes.

    Raises:
        DataError: nothing found, or the given file does not exist.
    """
    if path is not None and str(path) != "default":
        p = Path(path).expanduser()
        if not p.is_file():
            raise DataError(f"checkpoint not found: '{p}'")
        return p
    for name in ("default.pt", "default.ckpt"):
        if (PACKAGE_WEIGHTS / name).is_file():
            return PACKAGE_WEIGHTS / name
    roots = [Path.cwd()]
    if os.environ.get("INDI_ROOT"):
        roots.append(Path(os.environ["INDI_ROOT"]))
    found: list[Path] = []
    for root in roots:
        found += [Path(p) for p in glob.glob(str(root / "logs/train/runs/*/checkpoints/best-*.ckpt"))]
    if not found:
        raise DataError(
            f"no default weights: no src/weights/default.pt and no "
            f"logs/train/runs/*/checkpoints/best-*.ckpt under {Path.cwd()}; {TRAIN_HINT}"
        )
    return max(found, key=lambda p: p.stat().st_mtime)


def load_weights(path: str | os.PathLike | None = "default", device: torch.device | str = "cpu") -> LoadedWeights:
    """Resolve (see :func:`resolve_weights`) and load weights onto ``device``; the format is sniffed."""
    p = resolve_weights(path)
    if p.suffix.lower() == ".onnx":
        return _load_onnx(p, device)
    try:
        blob = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - a corrupt/foreign file raises anything from zipfile to pickle
        raise DataError(f"cannot load weights '{p}': {_first_line(e)}") from e
    if not isinstance(blob, dict):
        raise DataError(f"cannot load weights '{p}': not a checkpoint (got {type(blob).__name__})")
    if blob.get("format") == EXPORT_FORMAT:
        return _load_export(blob, p, device)
    if "state_dict" in blob and "hyper_parameters" in blob:
        return _load_lightning(blob, p, device)
    raise DataError(f"cannot load weights '{p}': neither a Lightning checkpoint nor an exported model")


# -------------------------------------------------------------------------------------------------------------
def _load_lightning(blob: dict[str, Any], path: Path, device: torch.device | str) -> LoadedWeights:
    from src.models.indi_module import load_checkpoint  # imports Lightning: only when a checkpoint needs it

    hp = dict(blob["hyper_parameters"])
    module = load_checkpoint(path, "cpu", ckpt=blob)
    net = module.inference_net.eval().to(device)
    net.requires_grad_(False)
    indi = {k: v for k, v in dict(hp.get("indi") or {}).items() if k != "_target_"}
    return LoadedWeights(
        net, module.schedule, _steps_or_none(hp.get("deband_steps")), path, "lightning", dict(hp["net"]), indi
    )


def export_payload(weights: LoadedWeights, deband_steps: int | None = None, half: bool = False) -> dict[str, Any]:
    """The self-contained export dict (see the module docstring) of loaded torch weights.

    ``half`` stores floating-point tensors as float16 (half the file size); loading copies them back into
    the float32 network, so inference runs as before (float32 or bfloat16 autocast).
    """
    if not isinstance(weights.net, nn.Module) or weights.net_config is None:
        raise DataError(f"cannot export '{weights.source}': only torch weights (.ckpt/.pt) can be exported")

    def stored(v: torch.Tensor) -> torch.Tensor:
        v = v.detach().cpu().clone()
        return v.half() if half and v.is_floating_point() else v

    return {
        "format": EXPORT_FORMAT,
        "version": 1,
        "net": weights.net_config,
        "state_dict": {k: stored(v) for k, v in weights.net.state_dict().items()},
        "indi": weights.indi_config or {},
        "deband_steps": deband_steps if deband_steps is not None else weights.deband_steps,
        "source": str(weights.source),
    }


def build_net(net_cfg: dict[str, Any]) -> nn.Module:
    """Instantiate a network config, allowing only classes of this package (nested objects included)."""
    targets = _targets(net_cfg)
    for target in targets or [""]:
        if not target.startswith(ALLOWED_TARGET_PREFIX):
            raise DataError(f"refusing to build network '{target}': only {ALLOWED_TARGET_PREFIX}* classes are allowed")
    kwargs = {k: v for k, v in net_cfg.items() if k != "_target_"}
    if len(targets) > 1 or any(str(k).startswith("_") for k in kwargs):
        import hydra  # nested objects or instantiation flags: Hydra's own rules

        return hydra.utils.instantiate(net_cfg)
    # a flat config (every exported model's) is a plain call: importing Hydra would add 0.1 s to each start
    module, _, name = str(net_cfg["_target_"]).rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


def _targets(v: Any) -> list[str]:
    """Every ``_target_`` in a nested config, outermost first."""
    if isinstance(v, dict):
        own = [str(v["_target_"])] if "_target_" in v else []
        return own + [t for k, x in v.items() if k != "_target_" for t in _targets(x)]
    if isinstance(v, (list, tuple)):
        return [t for x in v for t in _targets(x)]
    return []


def _load_export(blob: dict[str, Any], path: Path, device: torch.device | str) -> LoadedWeights:
    if int(blob.get("version", 0)) != 1:
        raise DataError(f"cannot load '{path}': export format version {blob.get('version')} is not supported")
    try:
        net = build_net(blob["net"])
        net.load_state_dict(blob["state_dict"])
        schedule = INDISchedule(**blob["indi"])
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001
        raise DataError(f"cannot load exported model '{path}': {_first_line(e)}") from e
    net = net.eval().to(device)
    net.requires_grad_(False)
    return LoadedWeights(
        net, schedule, _steps_or_none(blob.get("deband_steps")), path, "export", dict(blob["net"]), dict(blob["indi"])
    )


class _OnnxNet:
    """``F(x, t)`` through onnxruntime: torch tensors in and out (CPU float32).

    The graph was exported for sizes that are multiples of ``multiple`` (the UNet's own padding branches on
    the size, which a static graph cannot), so inputs are padded here the way the UNet pads, then cropped.
    """

    def __init__(self, session: Any, multiple: int) -> None:
        self.session = session
        self.multiple = multiple

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        from src.models.unet import _pad_to_multiple

        h, w = x.shape[-2:]
        xp = _pad_to_multiple(x.detach().float().cpu(), self.multiple)
        out = self.session.run(None, {"x": xp.contiguous().numpy(), "t": t.detach().float().cpu().reshape(-1).numpy()})
        return torch.from_numpy(out[0])[:, :, :h, :w]


def _load_onnx(path: Path, device: torch.device | str) -> LoadedWeights:
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise DataError("running .onnx models needs onnxruntime: pip install onnxruntime") from e
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        meta = json.loads(session.get_modelmeta().custom_metadata_map["indi_deband"])
    except Exception as e:  # noqa: BLE001
        raise DataError(f"cannot load ONNX model '{path}': {_first_line(e)}") from e
    return LoadedWeights(
        _OnnxNet(session, int(meta.get("multiple", 1))),
        INDISchedule(**meta["indi"]),
        _steps_or_none(meta.get("deband_steps")),
        path,
        "onnx",
        dict(meta["net"]),
        dict(meta["indi"]),
    )


def _steps_or_none(v: Any) -> int | None:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) and v >= 1 else None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
