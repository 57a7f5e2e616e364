"""Contour interpolation: rebuilds the ramp that each band of a banded frame stands for, across its whole width.

A band is a plateau: a region holding one code (up to the codec's noise) between a lower and a higher
plateau a few codes away. The smooth image it came from crossed the midpoint between two codes at each of
the plateau's borders, so a point inside lies, to first order, on the straight line between the two borders
it is nearest to: ``f = m_lo + (m_hi - m_lo) * d_lo / (d_lo + d_hi)`` with ``m`` the midpoints and ``d`` the
distances. This is exact for a banded linear ramp and leaves a smooth, unbanded ramp where it was (both
distances are equal), and its reach is the band's width, whatever that is (up to ``reach`` pixels): no blur
or small network can see across a 500 px band, and no wide blur can stay off the real shading beside it.

Each Y'CbCr plane (BT.709 limited-range codes, where video bands live) is worked at ``1/block`` resolution:
block means, their levels rounded to a code, and, per level, Euclidean distance transforms to the nearest
block at least ``threshold`` codes higher (lower) but at most ``max_step`` codes away (steps larger than
that are edges, not bands). A block can move only where both borders are found within ``reach`` pixels;
how much of its ramp it takes is decided by a learned gate (:mod:`src.baselines.contour_gate`) from what
makes a band crossing: borders on opposite sides, steps up and down of about the same size (bit-depth bands
are regular, a codec's flat blocks are not), a plateau some blocks across (on a smooth gradient every block
is a level of its own, its borders a block away), the block's flatness and its neighbourhood. With
``gate="rules"`` those tests are applied by hand instead: the directions to the borders at least 60 degrees
apart (fading out as they align), the steps' ratio above ``step_match`` and the two distances adding up to
``min_width`` blocks. A plateau with one border keeps its value (it may be a real extremum); blocks whose
own range exceeds ``max_step`` and their neighbours, and texture (luma std over 9 x 9 above
``texture_std``), keep the input, and corrections fade out past ``max_change`` codes. The correction,
smoothed over 3 x 3 blocks and upsampled bilinearly, is added to the input, so detail finer than a block
stays.

Last, :func:`chroma_from_luma` refits Cb and Cr as local linear functions of the rebuilt luma where that fit
is good and the input's chroma is flat: the chroma steps left after the ramps (colour blotches) follow the
finer luma instead. Where the ramps moved the luma, the gate has found band crossings, so the chroma there
is banded too and the fit runs again (``chroma_refits``).

It runs after the network (:class:`~src.inference.debander.Debander`): the network removes narrow bands
and the codec's noise, this rebuilds the wide ones it cannot see across.
"""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from src.baselines.contour_gate import DEFAULT_GATE, gate_features, load_gate
from src.baselines.filters import max3
from src.baselines.guided import box_mean, linear_fit
from src.colour.yuv import rgb_to_ycbcr709, ycbcr709_to_rgb
from src.utils.errors import ConfigError
from src.utils.validate import check_float, check_int

__all__ = ["ContourConfig", "ContourTracker", "chroma_from_luma", "contour_plane", "contour_fill", "gate_examples"]

#: blocks searched around a level's blocks before the whole reach (most bands are narrower)
NEAR = 24


@cache
def _feature_transform_fn():
    """scipy's compiled Euclidean feature transform, loaded on its own.

    ``from scipy import ndimage`` takes 0.2 to 0.45 s (its array-API layer pulls in ``scipy.special``,
    ``numpy.random`` and more), a tenth of a one-image ``deband`` run; the extension module alone loads in
    under a millisecond. It is checked against a known answer, and any surprise (another scipy layout or
    signature) falls back to ``scipy.ndimage.distance_transform_edt``.
    """
    try:
        import scipy

        path = next((Path(scipy.__file__).parent / "ndimage").glob("_nd_image.*"))
        spec = importlib.util.spec_from_file_location("scipy.ndimage._nd_image", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        fn = module.euclidean_feature_transform
        probe = np.ones((2, 4), np.int8)
        probe[1, 3] = 0
        ft = np.zeros((2, 2, 4), np.int32)
        fn(probe, None, ft)
        if (ft[0] == 1).all() and (ft[1] == 3).all():
            return fn
    except Exception:  # noqa: BLE001 - any failure means: use the public API
        pass
    return None


def nearest_target(target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the nearest ``True`` pixel (Euclidean) of each pixel of a 2-D bool array, as
    ``scipy.ndimage.distance_transform_edt(~target, return_distances=False, return_indices=True)`` gives them
    (int32, ties broken the same way)."""
    fn = _feature_transform_fn()
    if fn is None:
        from scipy import ndimage

        ii, jj = ndimage.distance_transform_edt(~target, return_distances=False, return_indices=True)
        return ii, jj
    ft = np.zeros((2, *target.shape), np.int32)
    fn((~target).astype(np.int8), None, ft)
    return ft[0], ft[1]


@dataclass(frozen=True)
class ContourConfig:
    """Parameters of :func:`contour_fill`; distances in full-resolution pixels, values in 8-bit codes."""

    luma_block: int = 8
    chroma_block: int = 4
    threshold: float = 2.0
    max_step: float = 12.0
    # bands can span most of a frame (a sky's at 4K: 1000 px and more); measured, the farther the better up to
    # about half the frame's width, and no slower (docs/model_history.md, twenty-fifth round)
    reach: int = 1920
    max_change: float = 6.0
    texture_std: float = 5.0
    step_match: float = 0.6
    min_blocks: int = 32
    min_width: float = 4.0  # in blocks: the two borders' distances added
    # the chroma fit after the ramps (:func:`chroma_from_luma`); radius 0 turns it off
    chroma_fit_radius: int = 32
    chroma_fit_residual: float = 2.5
    chroma_fit_max_change: float = 1.0
    # the fit run this many times more where the ramps moved the luma, fully where their correction averages
    # chroma_refit_codes over 33 x 33 px: there the chroma steps are bands as well (0 turns it off)
    chroma_refits: int = 2
    chroma_refit_codes: float = 0.1
    # how much of each ramp to apply: "learned" (the shipped gate, src/weights/contour_gate.pt), "rules" (the
    # hand rules alone) or the path of a gate fitted by `python -m src.train_gate`
    gate: str = "learned"

    def __post_init__(self) -> None:
        check_int("contour luma_block", self.luma_block, 1, 16)
        check_int("contour chroma_block", self.chroma_block, 1, 16)
        check_float("contour threshold", self.threshold, 0.5, 64.0)
        check_float("contour max_step", self.max_step, self.threshold, 128.0)
        check_int("contour reach", self.reach, 16, 8192)
        check_float("contour max_change", self.max_change, 0.0, 128.0)
        check_float("contour texture_std", self.texture_std, 0.0, 128.0)
        check_float("contour step_match", self.step_match, 0.0, 1.0)
        check_int("contour min_blocks", self.min_blocks, 1, 1 << 20)
        check_float("contour min_width", self.min_width, 0.0, 64.0)
        check_int("contour chroma_fit_radius", self.chroma_fit_radius, 0, 1024)
        check_float("contour chroma_fit_residual", self.chroma_fit_residual, 0.0, 64.0)
        check_float("contour chroma_fit_max_change", self.chroma_fit_max_change, 0.0, 64.0)
        check_int("contour chroma_refits", self.chroma_refits, 0, 8)
        check_float("contour chroma_refit_codes", self.chroma_refit_codes, 1e-3, 64.0)
        if not isinstance(self.gate, str) or not self.gate:
            raise ConfigError(f"contour gate must be 'learned', 'rules' or a file path, got {self.gate!r}")
        if self.gate not in ("learned", "rules"):
            load_gate(self.gate)  # a missing or truncated file fails here, not at the first frame (cached)


def _pad_to(t: torch.Tensor, k: int) -> torch.Tensor:
    h, w = t.shape[-2:]
    ph, pw = -h % k, -w % k
    return F.pad(t, (0, pw, 0, ph), mode="replicate") if ph or pw else t


def _block_range(t: torch.Tensor, k: int) -> torch.Tensor:
    """``max - min`` over each ``k`` x ``k`` block of ``(1, 1, H, W)`` (H, W multiples of ``k``) ->
    ``(1, 1, H / k, W / k)``: ``F.max_pool2d(t, k) + F.max_pool2d(-t, k)``, reduced along one axis at a time
    (12x faster on CPUs: 0.9 ms against 11 ms for a 1080p plane on 2 cores)."""
    h, w = t.shape[-2:]
    v = t.view(h // k, k, w // k, k)
    hi, lo = v.amax(1), v.amin(1)
    return (hi.amax(2) - lo.amin(2))[None, None]


def _distances(
    lo: np.ndarray, levels: np.ndarray, active: np.ndarray, cfg: ContourConfig, k: int, up: bool
) -> tuple[np.ndarray, ...]:
    """Per ``active`` block: distance (in blocks) to the nearest block a step above (``up``) or below its
    level, the value of the plateau there and the block's row/column; ``inf`` where there is none within
    ``reach`` (and on inactive blocks)."""
    h, w = lo.shape
    rmax = cfg.reach / k
    # 3 x 3 maximum (minimum) with the edge repeated: -inf padding gives the same
    t = torch.from_numpy(lo)[None, None]
    ext = (max3(t) if up else -max3(-t))[0, 0].numpy()
    r = int(np.ceil(rmax))
    dist = np.full((h, w), np.inf)
    val = np.zeros((h, w))
    pos = np.zeros((2, h, w))
    # the active blocks grouped by level (row-major within a level), so that no step below scans the whole
    # grid once per level
    by_y, by_x = np.nonzero(active)
    lv = levels[by_y, by_x]
    order = np.argsort(lv, kind="stable")
    by_y, by_x, lv = by_y[order], by_x[order], lv[order]
    levs, first, counts = np.unique(lv, return_index=True, return_counts=True)
    # a level held by a few blocks only is a border's mixed blocks or texture, not a plateau to rebuild
    for lev, i0, n in zip(levs, first, counts):
        if n < cfg.min_blocks:
            continue
        sy, sx = by_y[i0 : i0 + n], by_x[i0 : i0 + n]  # this level's blocks still without a border
        lim = lev + cfg.max_step if up else lev - cfg.max_step
        # most bands are narrower than NEAR blocks: search a small window first, then the whole reach for
        # the blocks whose nearest target was not found within it
        last = None  # the window searched before and its transform
        for margin in (min(NEAR, r), r) if r > NEAR else (r,):
            # a target within ``margin`` of a selected block lies inside their bounding box grown by margin
            y0, y1 = max(int(sy.min()) - margin, 0), min(int(sy.max()) + margin + 1, h)
            x0, x1 = max(int(sx.min()) - margin, 0), min(int(sx.max()) + margin + 1, w)
            if last is not None and last[0] == (y0, y1, x0, x1):
                # the whole reach covers no more than the small search did (a level spread over the frame):
                # the same transform, not computed twice
                ii, jj = last[1]
            else:
                win = lo[y0:y1, x0:x1]
                diff = win - lev if up else lev - win
                target = (diff >= cfg.threshold) & (diff <= cfg.max_step)
                if not target.any():
                    if margin == r:
                        break
                    continue
                # the nearest target of every window block; distances only where they are needed (the blocks
                # of this level), as scipy would compute them (a quarter of the transform's time saved)
                ii, jj = nearest_target(target)
                last = ((y0, y1, x0, x1), (ii, jj))
            wy, wx = sy - y0, sx - x0
            ti, tj = ii[wy, wx], jj[wy, wx]
            d = np.sqrt((ti - wy).astype(np.float64) ** 2 + (tj - wx).astype(np.float64) ** 2)
            found = d <= margin if margin < r else np.ones(d.shape, bool)  # nearer than anything outside: final
            fy, fx, ti, tj = sy[found], sx[found], ti[found] + y0, tj[found] + x0
            dist[fy, fx] = d[found]
            # a target straddling a border holds a mix of two plateaus: take the far plateau's value beside it
            far = ext[ti, tj]
            val[fy, fx] = np.minimum(far, lim) if up else np.maximum(far, lim)
            pos[0, fy, fx], pos[1, fy, fx] = ti, tj
            sy, sx = sy[~found], sx[~found]
            if not sy.size:
                break
    dist[dist > rmax] = np.inf
    return dist, val, pos


@dataclass
class _PlaneGeometry:
    """What :func:`contour_plane` works out on one plane's block grid ``(h, w)`` before it moves anything."""

    t: torch.Tensor  # the plane padded to whole blocks, (1, 1, H, W)
    lo_t: torch.Tensor  # its block means, (1, 1, h, w)
    trust: torch.Tensor  # 0 on blocks spanning more than a step and their neighbours, (1, 1, h, w)
    wt: torch.Tensor  # the per-pixel weight, padded, (1, 1, H, W)
    ramp_blocks: np.ndarray  # bool: blocks with a border above and one below (and trusted, not texture)
    change: np.ndarray  # the ramp's value minus the block's
    weight: np.ndarray  # the hand rules' share of the ramp
    features: dict[str, object]  # the inputs of :func:`~src.baselines.contour_gate.gate_features`


def _block_std(t: torch.Tensor, k: int) -> np.ndarray:
    m, sq = F.avg_pool2d(t, k), F.avg_pool2d(t * t, k)
    return (sq - m * m).clamp_min(0).sqrt()[0, 0].double().numpy()


def _plane_geometry(
    plane: torch.Tensor,
    cfg: ContourConfig,
    weight: torch.Tensor | None,
    block: int,
    reference: torch.Tensor | None,
    channel: int,
) -> _PlaneGeometry:
    k = block
    # float32 at full resolution (codes need ~1e-4 precision); the block-level geometry runs in float64
    t = _pad_to(plane.to(torch.float32)[None, None], k)
    lo_t = F.avg_pool2d(t, k)
    lo = lo_t[0, 0].double().numpy()
    levels = np.round(lo).astype(np.int64)
    # blocks that span more than a step (edges, texture) and their neighbours keep the input
    span = _block_range(t, k)
    trust = (span <= cfg.max_step).to(torch.float32)
    trust = -max3(-trust)
    wt = torch.ones_like(t) if weight is None else _pad_to(weight.to(torch.float32)[None, None], k)
    wt_blocks = F.avg_pool2d(wt, k)
    # only blocks that can move (and their 3 x 3 neighbours, which the smoothing below reads) need distances
    active = max3(trust * (wt_blocks > 0.5))[0, 0].numpy() > 0
    # the two searches are independent, and scipy's transforms release the GIL
    with ThreadPoolExecutor(2 if torch.get_num_threads() > 1 else 1) as pool:
        (a, vu, pu), (b, vd, pd) = pool.map(lambda up: _distances(lo, levels, active, cfg, k, up), (True, False))
    mid_up, mid_dn = (lo + vu) / 2, (lo + vd) / 2
    fa, fb = np.isfinite(a), np.isfinite(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        ramp = mid_dn + (mid_up - mid_dn) * b / (a + b)
        gi, gj = np.mgrid[0 : lo.shape[0], 0 : lo.shape[1]]
        uy, ux, dy, dx = pu[0] - gi, pu[1] - gj, pd[0] - gi, pd[1] - gj
        cos = (uy * dy + ux * dx) / np.maximum(np.hypot(uy, ux) * np.hypot(dy, dx), 1e-9)
    # borders on opposite sides: a band crossing; on the same side: a blotch or a ridge, left alone
    opposite = np.clip(0.5 - cos, 0.0, 1.0)
    # bit-depth bands step by about the same amount up and down; a codec's flat blocks do not
    with np.errstate(invalid="ignore", divide="ignore"):
        su, sd = vu - lo, lo - vd
        ratio = np.minimum(su, sd) / np.maximum(su, sd)
    regular = np.clip((ratio - cfg.step_match) / 0.2, 0.0, 1.0)
    # a band is a plateau some blocks across; on a smooth gradient steep enough to step a threshold from one
    # block to the next, every block is a level of its own with both borders a block away: nothing to rebuild
    with np.errstate(invalid="ignore"):
        wide = np.clip((a + b - cfg.min_width) / 2.0, 0.0, 1.0)
    rules = np.nan_to_num(opposite * regular * wide)
    # only blocks between two borders move: a plateau with one border may be a real extremum
    both = fa & fb
    change = np.where(both, np.nan_to_num(ramp - lo), 0.0)
    ramp_blocks = both & (trust[0, 0].numpy() > 0) & (wt_blocks[0, 0].numpy() > 0)
    ref = t if reference is None else _pad_to(reference.to(torch.float32)[None, None], k)
    features = dict(
        lo=lo, dist_up=a, dist_down=b, step_up=su, step_down=sd, ratio=ratio, cos=cos, change=change, weight=rules,
        opposite=opposite, regular=regular, channel=channel, block=k, block_range=span[0, 0].double().numpy(),
        texture=wt_blocks[0, 0].double().numpy(), in_std=_block_std(ref, k), out_std=_block_std(t, k),
        in_range=_block_range(ref, k)[0, 0].double().numpy(),
    )  # fmt: skip
    return _PlaneGeometry(t, lo_t, trust, wt, ramp_blocks, change, rules, features)


def _gate_weight(g: _PlaneGeometry, cfg: ContourConfig) -> np.ndarray:
    """The share of each block's ramp to apply: the learned gate's (:mod:`src.baselines.contour_gate`) on
    the blocks with a ramp, or the hand rules' with ``gate="rules"``."""
    if cfg.gate == "rules" or not g.ramp_blocks.any():
        return g.weight
    gate = load_gate(str(DEFAULT_GATE) if cfg.gate == "learned" else cfg.gate)
    x = torch.from_numpy(gate_features(**g.features))[None]
    mask = torch.from_numpy(g.ramp_blocks)[None, None].float()
    with torch.inference_mode():
        w = gate(x, mask)[0, 0].double().numpy()
    return np.where(g.ramp_blocks, w, 0.0)


def contour_plane(
    plane: torch.Tensor,
    cfg: ContourConfig = ContourConfig(),
    weight: torch.Tensor | None = None,
    block: int = 4,
    reference: torch.Tensor | None = None,
    channel: int = 0,
) -> torch.Tensor:
    """One plane of codes ``(H, W)`` float -> the contour-interpolated plane ``(H, W)`` float32, worked on
    ``block`` x ``block`` block means.

    ``weight`` ``(H, W)`` in [0, 1] scales the correction per pixel (0: keep the input there).
    ``reference``: the same plane of the banded input (default ``plane``) and ``channel`` (0 Y, 1 Cb, 2 Cr):
    what the learned gate reads besides the plane itself.
    """
    check_int("contour block", block, 1, 16)
    h, w = plane.shape
    g = _plane_geometry(plane, cfg, weight, block, reference, channel)
    f = g.lo_t[0, 0].double().numpy() + _gate_weight(g, cfg) * g.change
    corr = (torch.from_numpy(f).float()[None, None] - g.lo_t) * g.trust
    corr = F.avg_pool2d(F.pad(corr, (1, 1, 1, 1), mode="replicate"), 3, 1)
    # the correction is added to the input, so detail finer than a block stays
    d = F.interpolate(corr, size=g.t.shape[-2:], mode="bilinear", align_corners=False)
    # a correction much larger than half a step is an edge the tests above missed
    keep = d.abs().div_(-max(cfg.max_change, 1e-9)).add_(2).clamp_(0, 1)
    return keep.mul_(d).mul_(g.wt).add_(g.t)[0, 0, :h, :w]


def gate_examples(
    rgb: torch.Tensor, reference: torch.Tensor, clean: torch.Tensor, cfg: ContourConfig = ContourConfig()
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Training examples for the learned gate from one restored image ``rgb`` ``(3, H, W)``, the banded input
    it came from and its clean original (same shape, [0, 1]): per Y'CbCr plane, the gate's features
    ``(len(FEATURES), h, w)``, the mask of blocks with a ramp ``(h, w)`` bool, the ramp's change and what
    the block should change by to reach the clean plane's block mean (both ``(h, w)`` float32, codes)."""
    ycc, ref = rgb_to_ycbcr709(rgb.float()), rgb_to_ycbcr709(reference.float())
    target = rgb_to_ycbcr709(clean.float())
    wt = _texture_weight(_local_std(ycc[:1], 4)[0], cfg.texture_std)
    out = []
    for i in range(3):
        k = cfg.luma_block if i == 0 else cfg.chroma_block
        g = _plane_geometry(ycc[i], cfg, wt, k, ref[i], i)
        goal = F.avg_pool2d(_pad_to(target[i][None, None], k), k)[0, 0] - g.lo_t[0, 0]
        out.append(
            (gate_features(**g.features), g.ramp_blocks, g.change.astype(np.float32), goal.numpy().astype(np.float32))
        )
    return out


def _local_std(x: torch.Tensor, r: int) -> torch.Tensor:
    """Std over the ``(2r + 1)^2`` window of each plane of ``(C, H, W)`` -> ``(C, H, W)``."""
    m, sq = box_mean(x[None], r), box_mean((x * x)[None], r)
    return (sq - m * m).clamp_min(0).sqrt()[0]


def _texture_weight(std: torch.Tensor, texture_std: float) -> torch.Tensor:
    """1 where ``std`` (the luma's 9 x 9 std, :func:`_local_std`) is under ``texture_std`` codes, fading to 0 at
    1.5x that."""
    return (1.5 - std / max(texture_std, 1e-9)).clamp(0, 0.5) * 2


#: the chroma fit's regularisation (codes^2), the luma std (codes, 9 x 9) above which it fades out (texture),
#: and the reference chroma's std (codes, about 6 x 6 px) from which it fades out (chroma that is not flat)
FIT_EPS, FIT_TEXTURE_STD, FIT_FLAT_STD = 4.0, 3.0, 0.35
#: the fit's coefficients are computed on copies shrunk by this factor (they vary smoothly anyway)
FIT_SCALE = 8
#: the radius (px) over which the luma ramps' correction is averaged to decide where the chroma is refitted
REFIT_RADIUS = 16


def chroma_from_luma(
    ycc: torch.Tensor,
    reference: torch.Tensor,
    cfg: ContourConfig = ContourConfig(),
    luma_std: torch.Tensor | None = None,
    refit: torch.Tensor | None = None,
) -> torch.Tensor:
    """Refit the chroma of ``ycc`` ``(3, H, W)`` (BT.709 codes) as a local linear function of its luma.

    Why: a chroma plane quantized more coarsely than the luma (4:2:0 streams keep a bit less in chroma) says
    only which step the true colour was in; the luma, with finer steps and its ramps rebuilt, still carries
    how the colour moved, since across a sky or a wall colour and brightness change together. What the
    network and the ramps leave of the chroma steps, a few codes, is taken out this way; a window across a
    step of 7 codes or more fails the residual test below and is left to the ramps. Over each ``2r + 1``
    window (``chroma_fit_radius``) Cb and Cr are fitted as ``a * Y + b`` (least squares, like a guided
    filter) and moved towards the fit, by at most ``chroma_fit_max_change`` codes, only where the fit is
    good (weighted by ``1 - (residual std / chroma_fit_residual)^2``, 0 beyond), the luma is
    flat (9 x 9 std under 3 codes, fading out at 4.5) and ``reference``'s chroma is flat (the banded input:
    std over about 6 x 6 px under 0.35 code, fading out at twice that), so edges between colours and photos'
    own chroma detail stay.
    ``luma_std``: the luma's 9 x 9 std, when the caller has it. ``refit`` ``(1, H, W)`` in [0, 1]: where the
    fit runs ``chroma_refits`` times more, each time refitted to the chroma it moved (a window whose steps
    the first fit evened out passes the residual test the second time), its moves scaled by ``refit``.
    Returns float32 ``(3, H, W)`` with the luma unchanged.
    """
    if cfg.chroma_fit_radius <= 0:
        return ycc
    h, w = ycc.shape[-2:]
    luma_std = _local_std(ycc[:1], 4)[0] if luma_std is None else luma_std
    # the reference's chroma std over 6 x 6 px windows on a 2 px grid: its moments are pooled over 2 x 2 first
    # (a quarter of the work at full size), offset so float32 keeps the variance of codes near 128
    c = reference[None, 1:] - 128.0
    m1, m2 = F.avg_pool2d(c, 2, ceil_mode=True), F.avg_pool2d(c * c, 2, ceil_mode=True)
    var = (box_mean(m2, 1) - box_mean(m1, 1) ** 2)[0].clamp_min(0)
    flat = (2 - var.sqrt() / FIT_FLAT_STD).clamp(0, 1)
    flat = F.interpolate(flat[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    where = _texture_weight(luma_std, FIT_TEXTURE_STD) * flat
    out = ycc[1:] + _chroma_fit_move(ycc, where, cfg)
    # nothing to refit where no ramp moved the luma (most clean pictures): skip the fits' full-size work
    if refit is not None and bool(refit.any()):
        for _ in range(cfg.chroma_refits):
            out = out + refit * _chroma_fit_move(torch.cat([ycc[:1], out]), where, cfg)
    return torch.cat([ycc[:1], out])


def _chroma_fit_move(ycc: torch.Tensor, where: torch.Tensor, cfg: ContourConfig) -> torch.Tensor:
    """The chroma fit's move of Cb and Cr ``(2, H, W)`` for :func:`chroma_from_luma`, weighted by ``where``."""
    h, w = ycc.shape[-2:]
    r = cfg.chroma_fit_radius
    size = (max(1, round(h / FIT_SCALE)), max(1, round(w / FIT_SCALE)))
    small = F.interpolate(ycc[None], size=size, mode="area")
    rs = max(1, round(r / FIT_SCALE))
    # the residual, what the line leaves unexplained, is large where the window holds several colours or
    # banding too coarse for it
    a, b, resid = linear_fit(small[:, 1:], small[:, :1], rs, FIT_EPS, residual=True)
    tau = max(cfg.chroma_fit_residual, 1e-9)
    good = (1 - resid / tau**2).clamp(0, 1)
    # one upsampling for the three, and the move computed in place: full-size planes are the cost here
    coef = F.interpolate(torch.cat([a, b, good], 1), size=(h, w), mode="bilinear", align_corners=False)[0]
    a, b, good = coef.split(2)
    m = cfg.chroma_fit_max_change
    return torch.addcmul(b, a, ycc[:1]).sub_(ycc[1:]).mul_(good).mul_(where).clamp_(-m, m)


def contour_fill(
    rgb: torch.Tensor, cfg: ContourConfig = ContourConfig(), reference: torch.Tensor | None = None
) -> torch.Tensor:
    """Contour-interpolate each Y'CbCr plane of ``rgb`` ``(3, H, W)`` or ``(B, 3, H, W)`` in [0, 1], then refit
    the chroma to the luma (:func:`chroma_from_luma`).

    ``reference``: the banded input ``rgb`` was restored from (same shape), whose flat chroma the chroma fit
    looks for; default ``rgb`` itself. Returns float32 of the same shape in [0, 1]. Flat regions between band
    borders become ramps; edges, texture and regions that do not look like bands keep the input.
    """
    if rgb.ndim == 3:
        return contour_fill(rgb[None], cfg, None if reference is None else reference[None])[0]
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise ValueError(f"contour_fill expects (3, H, W) or (B, 3, H, W), got {tuple(rgb.shape)}")
    rgb = rgb.detach().to("cpu", torch.float32)
    same = reference is None
    reference = rgb if same else reference.detach().to("cpu", torch.float32)
    if reference.shape != rgb.shape:
        raise ValueError(f"contour_fill: reference {tuple(reference.shape)} does not match {tuple(rgb.shape)}")
    outs = []
    for img, ref in zip(rgb, reference):
        ycc = rgb_to_ycbcr709(img)
        luma_std = _local_std(ycc[:1], 4)[0]
        wt = _texture_weight(luma_std, cfg.texture_std)
        ref_ycc = ycc if same else rgb_to_ycbcr709(ref)
        planes = [
            contour_plane(p, cfg, wt, cfg.luma_block if i == 0 else cfg.chroma_block, ref_ycc[i], i)
            for i, p in enumerate(ycc)
        ]
        refit = None
        if cfg.chroma_refits and cfg.chroma_fit_radius > 0:
            # where the ramps moved the luma, the gate found band crossings: the chroma there is banded too
            moved = box_mean((planes[0] - ycc[0]).abs()[None, None], REFIT_RADIUS)[0]
            refit = (moved / cfg.chroma_refit_codes).clamp(0, 1)
        # the ramps changed the luma's std only where it was flat: the texture test reads the same
        out = chroma_from_luma(torch.stack(planes), ref_ycc, cfg, luma_std, refit)
        outs.append(ycbcr709_to_rgb(out))
    return torch.stack(outs).clamp(0, 1).to(torch.float32)


class ContourTracker:
    """The contour pass for a sequence of video frames, steady where the picture is.

    The pass reads up to ``reach`` pixels around each block, so codec noise or motion elsewhere in the frame
    can move a still sky's correction from one frame to the next: shimmer. Each frame's correction is
    therefore blended with the last computed one where the input has not changed since (per pixel, by up to
    ``static_codes`` codes): there it follows a running average with weight ``carry`` on the past (a few
    frames' memory, so a slow pan's bands are not left behind); where the picture changes, the frame's own
    correction is used. When almost nothing moved (under ``still_fraction`` of the pixels changed by
    ``static_codes`` or more since the last computed frame), that frame's correction is reused as it is,
    for up to ``max_reuse`` frames in a row: a still shot costs one pass every ``max_reuse + 1`` frames.

    ``__call__(frame, net_out)``: the input frame and the network's output for it, both ``(3, H, W)`` in
    [0, 1], in display order; returns the output with the correction, float32 ``(3, H, W)``.
    """

    def __init__(
        self,
        cfg: ContourConfig = ContourConfig(),
        carry: float = 0.9,
        static_codes: float = 4.0,
        still_fraction: float = 0.01,
        max_reuse: int = 7,
    ) -> None:
        check_float("contour carry", carry, 0.0, 0.99)
        check_float("contour static_codes", static_codes, 0.0, 255.0)
        check_float("contour still_fraction", still_fraction, 0.0, 1.0)
        check_int("contour max_reuse", max_reuse, 0, 1000)
        self.cfg, self.carry, self.static_codes = cfg, carry, static_codes
        self.still_fraction, self.max_reuse = still_fraction, max_reuse
        self.passes = 0  # frames the pass actually ran on
        self._prev: tuple[torch.Tensor, torch.Tensor] | None = None  # last computed frame, its correction
        self._reused = 0

    def __call__(self, frame: torch.Tensor, net_out: torch.Tensor) -> torch.Tensor:
        net_out = net_out.detach().float().cpu()
        frame = frame.detach().float().cpu()
        static = None
        if self._prev is not None and self._prev[0].shape == frame.shape:
            prev_frame, prev_corr = self._prev
            change = (frame - prev_frame).abs().amax(0, keepdim=True) * 255
            # a 3 x 3 max: a moving edge's neighbours are not static either
            change = max3(change)
            static = (1 - change / max(self.static_codes, 1e-9)).clamp(0, 1)
            # only where the pass corrects (flat areas) does movement matter
            corrected = prev_corr.abs().amax(0, keepdim=True) * 255 > 0.25
            moved = float(((static == 0) & corrected).sum()) / max(int(corrected.sum()), 1)
            if self._reused < self.max_reuse and moved < self.still_fraction:
                self._reused += 1
                return (net_out + prev_corr).clamp(0, 1)
        corr = contour_fill(net_out, self.cfg, frame) - net_out
        self.passes += 1
        if static is not None:
            corr = corr + static * self.carry * (self._prev[1] - corr)
        self._prev, self._reused = (frame, corr), 0
        return (net_out + corr).clamp(0, 1)
