"""CAMBI banding metric: a vectorised PyTorch port of Netflix libvmaf's ``cambi.c``.

CAMBI (Contrast Aware Multiscale Banding Index) scores banding on a luma plane:
0 means no banding, about 5 starts to be annoying, 24 is about the worst seen in practice.
This module follows libvmaf 3.2.0 (``libvmaf/src/feature/cambi.c``) step by step:

1. ``cambi_preprocessing``: optional nearest decimation to ``enc_width x enc_height``, conversion to
   10-bit codes (``<< (10 - bpc)`` up to 9 bits, rounded ``>>`` above 10) and, when the encode bit depth
   is below 10, the 2x2 anti-dithering average.
2. ``get_spatial_mask``: a pixel is "flat" when more than ``mask_index`` of the 7x7 neighbours around it
   equal their right and bottom neighbours (edges count as equal).
3. Five scales (each decimated 2:1 from the previous *mode-filtered* one; the mask is decimated too):
   a 3x3 separable mode filter, then per masked pixel a c-value from the histogram of masked codes in a
   ``window x window`` box around it (``calculate_c_values``/``c_value_pixel``), for contrast steps
   ``d = 1 .. 2^max_log_contrast`` 10-bit codes that are visible under BT.1886 (``tvi_for_diff``).
4. ``spatial_pooling``: mean of the top ``topk`` fraction of c-values per scale, scales weighted 16,8,4,2,1,
   divided by the window area; clipped to ``max_val`` (``cambi_max_val``).

libvmaf updates one histogram per column incrementally; here the histogram look-ups are vectorised:
the image is cut into tiles, and for each tile only the codes around the codes of its masked pixels
are one-hot encoded and box-summed with cumulative sums (see ``_c_values``). The histogram counts are exact, and the
float maths (``(float)(w*p0*p) * reciprocal_lut[p + p0]``) is done in float32 like C.

Full-reference mode follows ``combine_dist_src_scores``: ``max(0, cambi(dist) - cambi(ref))`` on the
*scores* (libvmaf does not subtract per-pixel c-values).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
import torchmetrics
from torch import Tensor

__all__ = ["CAMBI", "cambi", "cambi_rgb", "rgb_to_luma_codes", "round_rgb"]

NUM_SCALES = 5
SCALE_WEIGHTS = (16, 8, 4, 2, 1)
# Suprathreshold contrast response, indexed by (diff - 1)
CONTRAST_WEIGHTS = (1, 2, 3, 4, 4, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 8,
                    8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9)  # fmt: skip
MASK_FILTER_SIZE = 7
MIN_WIDTH_HEIGHT = 216  # libvmaf's CAMBI_MIN_WIDTH_HEIGHT
# 10-bit limited range used by libvmaf for every visibility computation
LUMA_FOOT_10B, LUMA_HEAD_10B = 64, 940
BT1886_GAMMA, BT1886_LW, BT1886_LB = 2.4, 300.0, 0.01
# code value for pixels that must never match a histogram bin (outside the image or outside the mask)
_SENTINEL = -(1 << 20)


# --------------------------------------------------------------------------------------------------
# Luminance model (luminance_tools.c) and the per-diff visibility thresholds
# --------------------------------------------------------------------------------------------------
def _bt1886_eotf(v: float) -> float:
    a = (BT1886_LW ** (1 / BT1886_GAMMA) - BT1886_LB ** (1 / BT1886_GAMMA)) ** BT1886_GAMMA
    b = BT1886_LB ** (1 / BT1886_GAMMA) / (BT1886_LW ** (1 / BT1886_GAMMA) - BT1886_LB ** (1 / BT1886_GAMMA))
    return a * math.pow(max(v + b, 0.0), BT1886_GAMMA)


def _pq_eotf(v: float) -> float:
    m1, m2, c1, c2, c3 = 0.1593017578125, 78.84375, 0.8359375, 18.8515625, 18.6875
    num = max(math.pow(v, 1 / m2) - c1, 0.0)
    den = c2 - c3 * math.pow(v, 1 / m2)
    return 10000 * math.pow(num / den, 1 / m1)


_EOTFS = {"bt1886": _bt1886_eotf, "pq": _pq_eotf}


def _luminance(sample: int, eotf: str) -> float:
    """``vmaf_luminance_get_luminance`` for 10-bit limited range."""
    clipped = min(max(sample, LUMA_FOOT_10B), LUMA_HEAD_10B)
    return _EOTFS[eotf]((clipped - LUMA_FOOT_10B) / (LUMA_HEAD_10B - LUMA_FOOT_10B))


def _tvi_condition(sample: int, diff: int, tvi_threshold: float, eotf: str) -> bool:
    mean_l = _luminance(sample, eotf)
    return _luminance(sample + diff, eotf) - mean_l > tvi_threshold * mean_l


def _tvi_bisect_flag(sample: int, diff: int, tvi_threshold: float, eotf: str) -> int:
    """-1: too small, 0: correct, 1: too big (``tvi_hard_threshold_condition``)."""
    if not _tvi_condition(sample, diff, tvi_threshold, eotf):
        return 1
    if _tvi_condition(sample + 1, diff, tvi_threshold, eotf):
        return -1
    return 0


def _tvi_for_diff(diff: int, tvi_threshold: float, eotf: str) -> int:
    """Largest 10-bit code at which a step of ``diff`` codes is still visible (``get_tvi_for_diff``)."""
    foot, head, max_val = LUMA_FOOT_10B, LUMA_HEAD_10B - diff - 1, 1023
    flag = _tvi_bisect_flag(foot, diff, tvi_threshold, eotf)
    if flag == 1:
        return 0
    if flag == 0:
        return foot
    flag = _tvi_bisect_flag(head, diff, tvi_threshold, eotf)
    if flag == -1:
        return max_val
    if flag == 0:
        return head
    while True:
        mid = foot + (head - foot) // 2
        flag = _tvi_bisect_flag(mid, diff, tvi_threshold, eotf)
        if flag == 1:
            head = mid
        elif flag == -1:
            foot = mid
        else:
            return mid


def _vlt_luma(vis_lum_threshold: float, eotf: str) -> int:
    """Smallest code whose luminance reaches ``vis_lum_threshold`` (0 when it is the foot) (``get_vlt_luma``)."""
    sample = LUMA_FOOT_10B
    while sample < 1023 and _luminance(sample, eotf) < vis_lum_threshold:
        sample += 1
    return 0 if sample == LUMA_FOOT_10B else sample


def adjusted_window_size(window_size: int, width: int, height: int, high_res_speedup: bool = False) -> int:
    """Window at ``width x height``: 65 at 4K scaled by (W+H)/(3840+2160), made odd (``adjust_window_size``)."""
    ws = ((window_size * (width + height)) // 375) >> 4
    if high_res_speedup:
        ws = (ws + 1) >> 1
    return ws | 1


def _mask_index(width: int, height: int, filter_size: int = MASK_FILTER_SIZE) -> int:
    """Flat-pixel threshold of the 7x7 mask, grows with log2 of the frame area (``get_mask_index``)."""
    shifted_wh = (width >> 6) * (height >> 6)
    ceil_log2 = 0 if shifted_wh == 0 else (shifted_wh - 1).bit_length()
    return (filter_size * filter_size + 3 * (ceil_log2 - 11) - 1) >> 1


# --------------------------------------------------------------------------------------------------
# Image operations
# --------------------------------------------------------------------------------------------------
def _nearest_positions(in_size: int, out_size: int) -> Tensor:
    """Source indices of ``decimate_generic_*``: float32 positions accumulated like the C loop, rounded."""
    ratio = torch.tensor(in_size, dtype=torch.float32) / torch.tensor(out_size, dtype=torch.float32)
    # start = ratio / 2 - 0.5 is evaluated in double, then stored in a float
    start = torch.tensor(float(ratio / 2) - 0.5, dtype=torch.float32)
    pos = torch.empty(out_size, dtype=torch.float32)
    x = start
    for j in range(out_size):  # sequential float32 accumulation (x += ratio), as in C
        pos[j] = x
        x = x + ratio
    return torch.floor(pos.double() + 0.5).long().clamp_(0, in_size - 1)


def _to_10bit(image: Tensor, bit_depth: int) -> Tensor:
    """Convert codes of ``bit_depth`` bits to 10-bit codes like ``decimate_generic_*_and_convert_to_10b``."""
    if bit_depth <= 10:
        return image << (10 - bit_depth)
    shift = bit_depth - 10
    return (image + (1 << (shift - 1))) >> shift


def _anti_dithering(image: Tensor) -> Tensor:
    """2x2 average (floor) towards the bottom-right; last row/column average 2 pixels, corner unchanged."""
    out = image.clone()
    out[:-1, :-1] = (image[:-1, :-1] + image[:-1, 1:] + image[1:, :-1] + image[1:, 1:]) >> 2
    out[:-1, -1] = (image[:-1, -1] + image[1:, -1]) >> 1
    out[-1, :-1] = (image[-1, :-1] + image[-1, 1:]) >> 1
    return out


def _mode3(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """Majority of three values, or their minimum when all differ."""
    smallest = torch.minimum(torch.minimum(a, b), c)
    return torch.where((a == b) | (a == c), a, torch.where(b == c, b, smallest))


def _filter_mode(image: Tensor) -> Tensor:
    """``filter_mode``: horizontal 3-tap mode, then vertical 3-tap mode; the first/last row stay untouched."""
    h, w = image.shape
    horiz = image.clone()
    if w >= 3:
        horiz[:, 1:-1] = _mode3(image[:, :-2], image[:, 1:-1], image[:, 2:])
    out = image.clone()
    if h >= 3:
        out[1:-1] = _mode3(horiz[:-2], horiz[1:-1], horiz[2:])
    return out


def _box_sum_7(x: Tensor) -> Tensor:
    """Sum over the 7x7 box around each pixel, zero outside. ``x``: (H, W) bool -> (H, W) int16."""
    r = MASK_FILTER_SIZE // 2
    h, w = x.shape
    xp = F.pad(x.to(torch.int16), (r, r, r, r))
    rows = sum(xp[:, j : j + w] for j in range(MASK_FILTER_SIZE))  # shifted adds beat a 1-channel conv
    return sum(rows[i : i + h] for i in range(MASK_FILTER_SIZE))


def _spatial_mask(image: Tensor) -> Tensor:
    """``get_spatial_mask``: (H, W) codes -> (H, W) bool mask of flat pixels."""
    h, w = image.shape
    zero_deriv = torch.ones_like(image, dtype=torch.bool)
    zero_deriv[:, :-1] &= image[:, :-1] == image[:, 1:]
    zero_deriv[:-1, :] &= image[:-1, :] == image[1:, :]
    return _box_sum_7(zero_deriv) > _mask_index(w, h)


def _tile_size(pad: int) -> int:
    # a tile's halo costs (T + 2 pad)^2 / T^2; larger tiles hold more distinct codes, 4*pad balances both
    return int(min(128, max(32, 4 * pad)))


def _channel_bucket(n: int) -> int:
    """Round a channel count up (1, 2, 3, 4, then multiples of 8) so items batch together."""
    return n if n <= 4 else -(-n // 8) * 8


def _c_values(
    image: Tensor,
    mask: Tensor,
    pad: int,
    tvi: Sequence[int],
    vlt_luma: int,
    elem_budget: int = 1 << 23,
    max_chunk: int = 64,
) -> Tensor:
    """Per-pixel c-values of one scale (``calculate_c_values``), vectorised.

    image: (H, W) int32 10-bit codes; mask: (H, W) bool; pad: window half-size;
    tvi[d-1]: largest code at which a step of d codes is visible. Returns (H, W) float32.

    For a masked pixel of code v, C reads from the histogram of masked codes in its window
    p0 = #v and p(+-d) = #(v +- d), d = 1..K. Here the image is cut into T x T tiles. A work item is a
    tile and a chunk of at most ``max_chunk`` centre codes [start, start + L) of its masked pixels; it
    needs the codes [start - K, start + L + K) of the tile plus its halo, and of those only the codes
    present there get a channel (a flat tile needs one). Each item one-hot encodes its channels and
    box-sums them with cumulative sums (int16 while side * window < 2^15), then every centre pixel
    gathers its 2K+1 counts.
    """
    h, w = image.shape
    dev = image.device
    num_diffs = len(tvi)
    out = torch.zeros(h * w, dtype=torch.float32, device=dev)
    query = mask & (image <= max(tvi))
    if not bool(query.any()):
        return out.view(h, w)

    tile = _tile_size(pad)
    side = tile + 2 * pad + 1  # one extra leading row/column so cumsum differences need no padding
    acc = torch.int16 if side * (2 * pad + 1) < (1 << 15) else torch.int32  # the y cumsum's largest value
    nty, ntx = -(-h // tile), -(-w // tile)
    # sources: masked codes, a sentinel elsewhere (also in the zero padding around the image)
    src = torch.full((nty * tile + 2 * pad + 1, ntx * tile + 2 * pad + 1), _SENTINEL, dtype=torch.int32, device=dev)
    src[pad + 1 : pad + 1 + h, pad + 1 : pad + 1 + w] = torch.where(mask, image, _SENTINEL)
    qcodes = torch.full((nty * tile, ntx * tile), _SENTINEL, dtype=torch.int32, device=dev)
    qcodes[:h, :w] = torch.where(query, image, _SENTINEL)

    tiles_q = qcodes.view(nty, tile, ntx, tile).permute(0, 2, 1, 3).reshape(nty * ntx, tile * tile)
    valid = tiles_q != _SENTINEL
    big = torch.iinfo(torch.int32).max
    tile_ids = torch.nonzero(valid.any(1)).flatten()
    vmin = torch.where(valid, tiles_q, big).amin(1)[tile_ids]
    vmax = torch.where(valid, tiles_q, -big).amax(1)[tile_ids]

    # work items: (tile, first centre code, number of centre codes)
    n_chunks = (vmax - vmin) // max_chunk + 1
    item_tile = tile_ids.repeat_interleave(n_chunks)
    first_item = torch.repeat_interleave(n_chunks.cumsum(0) - n_chunks, n_chunks)
    chunk_idx = torch.arange(item_tile.numel(), device=dev) - first_item
    item_start = vmin.repeat_interleave(n_chunks) + chunk_idx * max_chunk
    item_len = (vmax.repeat_interleave(n_chunks) - item_start + 1).clamp(max=max_chunk)
    n_codes = max_chunk + 2 * num_diffs  # code slots per item: [start - K, start + L + K)

    # patches in (item, x, y) order: torch's cumsum is only fast along a non-innermost dim
    windows = src.t().unfold(0, side, tile).unfold(1, side, tile)  # view: (ntx, nty, side_x, side_y)
    patches = windows[item_tile % ntx, item_tile // ntx]  # (items, side_x, side_y) int32
    n_items = patches.shape[0]
    lo = (item_start - num_diffs).to(torch.int32)
    # which codes of [lo, lo + n_slots) occur in each patch: slot -1 and n_slots collect the others
    n_slots = (item_len + 2 * num_diffs).to(torch.int32)
    key = torch.minimum((patches - lo.view(-1, 1, 1)).clamp_(min=-1), n_slots.view(-1, 1, 1))
    key += (torch.arange(n_items, device=dev, dtype=torch.int32) * (n_codes + 2) + 1).view(-1, 1, 1)
    counts = torch.bincount(key.flatten(), minlength=n_items * (n_codes + 2)).view(n_items, n_codes + 2)
    present = (counts[:, 1 : n_codes + 1] > 0) & (torch.arange(n_codes, device=dev) < n_slots.view(-1, 1))
    del key, counts
    # channels of an item: the codes present in its patch, ascending; lut: code slot -> channel or -1
    rank = present.cumsum(1) - 1
    lut = F.pad(torch.where(present, rank, -1), (0, 1), value=-1)
    buckets = [_channel_bucket(int(n)) for n in present.sum(1).tolist()]
    chan_code = torch.full((n_items, max(buckets) + 1), _SENTINEL - 1, dtype=torch.int32, device=dev)
    it_idx, sl_idx = torch.nonzero(present, as_tuple=True)
    chan_code[it_idx, rank[it_idx, sl_idx]] = lo[it_idx] + sl_idx.to(torch.int32)

    wcode = _weight_table(tvi, vlt_luma, dev).view(-1)  # [v * (K+1) + d]: weight if step d counts at v
    offs = torch.arange(-num_diffs, num_diffs + 1, device=dev).view(1, -1, 1, 1)
    out_tiles = torch.zeros(nty * ntx, tile, tile, dtype=torch.float32, device=dev)  # (tile, y, x)
    centre_sl = slice(pad + 1, pad + 1 + tile)
    buckets_t = torch.tensor(buckets, device=dev)
    # bucket 1: only the pixel's own code is in the window, c = 0; bucket 0: a chunk without pixels
    for bucket in sorted(set(buckets) - {0, 1}):
        sel = torch.nonzero(buckets_t == bucket).flatten()
        batch = max(1, elem_budget // (bucket * side * side))
        for b0 in range(0, sel.numel(), batch):
            items = sel[b0 : b0 + batch]
            n = items.numel()
            patch = patches[items]
            codes = chan_code[items, :bucket]
            onehot = patch.unsqueeze(1) == codes.view(n, bucket, 1, 1)  # (n, ch, side_x, side_y)
            cum = torch.cumsum(onehot, dim=2, dtype=acc)
            # x box sums, written straight into (n, ch, side_y, tile_x) layout for the y cumsum
            box_x = torch.empty(n, bucket, side, tile, dtype=acc, device=dev)
            torch.sub(cum[:, :, 2 * pad + 1 :], cum[:, :, : side - 2 * pad - 1], out=box_x.transpose(2, 3))
            cum = torch.cumsum(box_x, dim=2, dtype=acc)
            box = cum[:, :, 2 * pad + 1 :] - cum[:, :, : side - 2 * pad - 1]  # (n, ch, tile_y, tile_x)

            # centre pixels of this item: masked, visible-range codes inside the item's code chunk
            centre = patch[:, centre_sl, centre_sl].transpose(1, 2).contiguous()  # (n, tile_y, tile_x)
            start = item_start[items].to(torch.int32).view(-1, 1, 1)
            in_item = (centre >= start) & (centre < start + item_len[items].view(-1, 1, 1)) & (centre <= max(tvi))
            w_row = centre.clamp(0, 1024).long() * (num_diffs + 1)
            c = torch.zeros(n, tile, tile, dtype=torch.float32, device=dev)
            if bucket <= 2 * num_diffs + 1:  # few codes: visit each channel
                p0 = torch.zeros(n, tile, tile, dtype=torch.int32, device=dev)
                for j in range(bucket):
                    p0 = torch.where(codes[:, j].view(-1, 1, 1) == centre, box[:, j], p0)
                for j in range(bucket):
                    diff = (codes[:, j].view(-1, 1, 1) - centre).abs()
                    ok = (diff >= 1) & (diff <= num_diffs)
                    wt = torch.where(ok, wcode[w_row + diff.clamp(max=num_diffs)], 0)
                    c = torch.maximum(c, _c_value(wt, p0, box[:, j].to(torch.int32)))
            else:  # many codes: gather the 2K+1 counts of each pixel
                v_slot = (centre - start + num_diffs).long()
                slots = (v_slot.unsqueeze(1) + offs).clamp_(0, n_codes).view(n, -1)
                ch = torch.gather(lut[items], 1, slots).view(n, 2 * num_diffs + 1, tile, tile)
                counts = torch.where(ch >= 0, torch.gather(box, 1, ch.clamp(min=0)), 0).to(torch.int32)
                p0 = counts[:, num_diffs]
                for d in range(1, num_diffs + 1):
                    p = torch.maximum(counts[:, num_diffs + d], counts[:, num_diffs - d])
                    c = torch.maximum(c, _c_value(wcode[w_row + d], p0, p))
            out_tiles.index_add_(0, item_tile[items], torch.where(in_item, c, 0.0))
    c_map = out_tiles.view(nty, ntx, tile, tile).permute(0, 2, 1, 3).reshape(nty * tile, ntx * tile)
    return c_map[:h, :w].contiguous()


def _weight_table(tvi: Sequence[int], vlt_luma: int, device: torch.device) -> Tensor:
    """(1025, K+1) int32: contrast weight of a step of d codes at code v if C would count it, else 0.

    C counts step d at code v when v <= tvi[d-1] and v + K + d > vlt_luma (it compares the
    histogram-offset code v + K with ``vlt_luma``).
    """
    num_diffs = len(tvi)
    v = torch.arange(1025, device=device).view(-1, 1)
    d = torch.arange(num_diffs + 1, device=device).view(1, -1)
    w = torch.tensor((0,) + CONTRAST_WEIGHTS[:num_diffs], dtype=torch.int32, device=device).view(1, -1)
    tvi_d = torch.tensor((-1,) + tuple(tvi), device=device).view(1, -1)
    ok = (d >= 1) & (v <= tvi_d) & (v + num_diffs + d > vlt_luma)
    return torch.where(ok, w, 0).contiguous()


def _c_value(weight: Tensor, p0: Tensor, p: Tensor) -> Tensor:
    """One term of ``c_value_pixel``: (float)(weight * p0 * p) * reciprocal_lut[p + p0].

    libvmaf multiplies by a table of float32 reciprocals 1.0f / i instead of dividing; the product
    can differ from the quotient by one ulp, so we do the same. Inf/NaN where p + p0 == 0, which only
    happens off the centre pixels (callers mask those).
    """
    return (weight * p0 * p).to(torch.float32) * torch.reciprocal((p + p0).to(torch.float32))


def _topk_mean(c_values: Tensor, topk: float) -> float:
    """``spatial_pooling``: mean of the ``int(topk * n)`` (>= 1) largest values, summed in double."""
    n = c_values.numel()
    k = min(max(int(topk * n), 1), n)
    positive = c_values[c_values > 0]  # the rest are zeros and add nothing to the sum
    if positive.numel() > k:
        positive = torch.topk(positive, k, sorted=False).values
    return float(positive.double().sum()) / k


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------
def _check_params(window_size: int, topk: float, tvi_threshold: float, max_log_contrast: int, eotf: str) -> None:
    if not 15 <= window_size <= 127:
        raise ValueError(f"cambi: window_size must be in [15, 127], got {window_size}")
    if not 0.0001 <= topk <= 1.0:
        raise ValueError(f"cambi: topk must be in [0.0001, 1], got {topk}")
    if not 0.0001 <= tvi_threshold <= 1.0:
        raise ValueError(f"cambi: tvi_threshold must be in [0.0001, 1], got {tvi_threshold}")
    if not 0 <= max_log_contrast <= 5:
        raise ValueError(f"cambi: max_log_contrast must be in [0, 5], got {max_log_contrast}")
    if eotf not in _EOTFS:
        raise ValueError(f"cambi: eotf must be one of {sorted(_EOTFS)}, got {eotf!r}")


def _as_codes(image: Tensor, bit_depth: int) -> Tensor:
    """Validate a (H, W) plane of integer codes and return it as int32."""
    if image.ndim != 2:
        raise ValueError(f"cambi: expected a (H, W) luma plane, got shape {tuple(image.shape)}")
    if not 1 <= bit_depth <= 16:
        raise ValueError(f"cambi: bit_depth must be in [1, 16], got {bit_depth}")
    if image.numel() == 0:
        raise ValueError("cambi: empty image")
    if image.is_floating_point():
        rounded = torch.round(image)
        if not torch.equal(rounded, image):
            raise ValueError("cambi: expected integer code values, got fractional values")
        image = rounded
    image = image.to(torch.int32)
    lo, hi = int(image.min()), int(image.max())
    if lo < 0 or hi > (1 << bit_depth) - 1:
        top = (1 << bit_depth) - 1
        raise ValueError(f"cambi: codes must be in [0, {top}] for {bit_depth}-bit input, got [{lo}, {hi}]")
    return image


def _cambi_single(
    image: Tensor,
    *,
    bit_depth: int,
    window_size: int,
    topk: float,
    tvi: Sequence[int],
    vlt_luma: int,
    enc_width: int | None,
    enc_height: int | None,
    enc_bitdepth: int | None,
    high_res_speedup: int,
    strict: bool,
    want_heatmap: bool,
) -> tuple[float, Tensor | None]:
    """Unclipped CAMBI score of one (H, W) plane, plus the (H, W) heatmap when asked for."""
    codes = _as_codes(image, bit_depth)
    in_h, in_w = codes.shape
    width, height = enc_width or in_w, enc_height or in_h
    if width > in_w or height > in_h:  # an encode that was downscaled is not upscaled back
        width, height = in_w, in_h
    if width < MIN_WIDTH_HEIGHT and height < MIN_WIDTH_HEIGHT:
        if strict:
            raise ValueError(
                f"cambi: {width}x{height} is below libvmaf's minimum (width or height must be >= {MIN_WIDTH_HEIGHT})"
            )
    # cambi_high_res_speedup only applies from its own resolution on
    speedup_min_pixels = {1080: 1920 * 1080, 1440: 2560 * 1440, 2160: 3840 * 2160}.get(high_res_speedup)
    speedup = speedup_min_pixels is not None and width * height >= speedup_min_pixels

    # 1. preprocessing
    if (width, height) != (in_w, in_h):
        codes = codes[_nearest_positions(in_h, height)][:, _nearest_positions(in_w, width)]
    img = _to_10bit(codes, bit_depth)
    if (enc_bitdepth or bit_depth) < 10:
        img = _anti_dithering(img)

    ws = adjusted_window_size(window_size, width, height, speedup)
    if strict and ws * ws >= 4226:  # CAMBI_RECIPROCAL_LUT_SIZE: libvmaf's init refuses larger windows
        raise ValueError(f"cambi: adjusted window {ws} at {width}x{height} exceeds libvmaf's limit of 65")
    if width < MIN_WIDTH_HEIGHT and height < MIN_WIDTH_HEIGHT:
        ws = max(ws, 3)  # documented fallback: keep a window that can see a neighbour
    pad = ws >> 1

    # 2. flat-region mask at full resolution, 3. five scales
    mask = _spatial_mask(img)
    scores: list[float] = []
    heat = torch.zeros(height, width, dtype=torch.float32, device=img.device) if want_heatmap else None
    for scale in range(NUM_SCALES):
        if scale > 0 or speedup:
            img, mask = img[::2, ::2], mask[::2, ::2]
        img = _filter_mode(img)  # the filtered image is also what the next scale decimates
        c = _c_values(img, mask, pad, tvi, vlt_luma)
        scores.append(_topk_mean(c, topk))
        if heat is not None:
            factor = 1 << (scale + int(speedup))
            ch, cw = c.shape  # nearest upsampling: scale pixel (i, j) came from (i * factor, j * factor)
            up = c[:, None, :, None].expand(ch, factor, cw, factor).reshape(ch * factor, cw * factor)
            heat.add_(up[:height, :width], alpha=SCALE_WEIGHTS[scale])

    pixels_in_window = (2 * pad + 1) ** 2
    score = sum(s * wt for s, wt in zip(scores, SCALE_WEIGHTS)) / pixels_in_window
    if heat is not None:
        heat /= pixels_in_window
        if heat.shape != (in_h, in_w):
            heat = F.interpolate(heat[None, None], size=(in_h, in_w), mode="nearest")[0, 0]
    return score, heat


def cambi(
    image: Tensor,
    *,
    bit_depth: int = 8,
    window_size: int = 65,
    topk: float = 0.6,
    tvi_threshold: float = 0.019,
    max_log_contrast: int = 2,
    reference: Tensor | None = None,
    return_heatmap: bool = False,
    vis_lum_threshold: float = 0.0,
    max_val: float = 1000.0,
    eotf: str = "bt1886",
    enc_width: int | None = None,
    enc_height: int | None = None,
    enc_bitdepth: int | None = None,
    high_res_speedup: int = 0,
    strict: bool = False,
) -> float | tuple[float, Tensor]:
    """CAMBI score of a luma plane, as libvmaf 3.2.0 computes it.

    Args:
        image: (H, W) integer code values 0 .. 2^bit_depth - 1 (any int or float dtype).
        bit_depth: bit depth of ``image``; below 10 bits the 2x2 anti-dithering filter runs.
        window_size: window at 4K; rescaled by (W + H) / 6000 and made odd.
        topk: fraction of the highest c-values averaged per scale.
        tvi_threshold: BT.1886 visibility threshold (delta L / L).
        max_log_contrast: steps of 1 .. 2^max_log_contrast 10-bit codes are considered.
        reference: optional (H', W') reference plane: full-reference CAMBI,
            ``min(max(0, cambi(image) - cambi(reference)), max_val)`` as libvmaf does (on scores).
        return_heatmap: also return an (H, W) float32 map: per-scale c-values upsampled (nearest) to the
            input size, weighted 16,8,4,2,1 and divided by the window area (its top-k pooling per scale
            gives the score). With ``reference`` it is ``clamp(heat(image) - heat(reference), min=0)``.
        vis_lum_threshold, max_val, eotf, enc_width, enc_height, enc_bitdepth, high_res_speedup: libvmaf's
            ``cambi_vis_lum_threshold``, ``cambi_max_val``, ``eotf``, ``enc_*`` (nearest decimation to the
            encode size; never upscaled) and ``cambi_high_res_speedup``.
        strict: libvmaf refuses frames whose width and height are both below 216, and adjusted windows
            above 65 (frames beyond about 4K at the default window). With ``strict`` these raise
            ``ValueError``; otherwise the frame is scored anyway: small frames with the window formula
            clamped to at least 3 pixels, large windows as the formula gives them.

    Returns:
        The score, or ``(score, heatmap)`` when ``return_heatmap``.
    """
    _check_params(window_size, topk, tvi_threshold, max_log_contrast, eotf)
    num_diffs = 1 << max_log_contrast
    tvi = [_tvi_for_diff(d, tvi_threshold, eotf) for d in range(1, num_diffs + 1)]
    vlt_luma = _vlt_luma(vis_lum_threshold, eotf)
    kw = dict(
        bit_depth=bit_depth,
        window_size=window_size,
        topk=topk,
        tvi=tvi,
        vlt_luma=vlt_luma,
        enc_width=enc_width,
        enc_height=enc_height,
        enc_bitdepth=enc_bitdepth,
        high_res_speedup=high_res_speedup,
        strict=strict,
        want_heatmap=return_heatmap,
    )
    with torch.no_grad():
        score, heat = _cambi_single(image, **kw)
        if reference is not None:
            ref_score, ref_heat = _cambi_single(reference, **kw)
            score = max(0.0, score - ref_score)
            if heat is not None and ref_heat is not None:
                if ref_heat.shape != heat.shape:
                    ref_heat = F.interpolate(ref_heat[None, None], size=heat.shape, mode="nearest")[0, 0]
                heat = (heat - ref_heat).clamp_(min=0)
    score = min(score, max_val)
    return (score, heat) if return_heatmap else score


LUMA_METHODS = ("exact", "ffmpeg")


def rgb_to_luma_codes(rgb: Tensor, bit_depth: int = 8, method: str = "exact") -> Tensor:
    """BT.709 limited-range luma codes: Y = round(16*2^(b-8) + 219*2^(b-8) * (0.2126 R + 0.7152 G + 0.0722 B)).

    rgb: (3, H, W) or (B, 3, H, W) float in [0, 1] -> (H, W) or (B, H, W) int64.
    ``method="exact"`` rounds half to even (the reference's ``default_8bit_exact``). ``method="ffmpeg"``
    (8 bits only) reproduces ffmpeg swscale's fixed-point path (``rgb24ToY_c``: 15-bit coefficients, an
    8.6 fixed-point intermediate, then rounding), which the reference's default pipeline used: on the
    shared vectors it gives their y8 planes exactly, pixel for pixel. RGB is taken as 8-bit codes first.
    """
    if rgb.ndim not in (3, 4) or rgb.shape[-3] != 3:
        raise ValueError(f"rgb_to_luma_codes: expected (3, H, W) or (B, 3, H, W), got {tuple(rgb.shape)}")
    if method not in LUMA_METHODS:
        raise ValueError(f"rgb_to_luma_codes: method must be one of {LUMA_METHODS}, got {method!r}")
    if method == "ffmpeg":
        if bit_depth != 8:
            raise ValueError("rgb_to_luma_codes: method='ffmpeg' is only defined for 8-bit output")
        return _ffmpeg_luma8(rgb)
    x = rgb.to(torch.float64).clamp(0, 1)
    luma = 0.2126 * x[..., 0, :, :] + 0.7152 * x[..., 1, :, :] + 0.0722 * x[..., 2, :, :]
    scale = float(1 << (bit_depth - 8)) if bit_depth >= 8 else 2.0 ** (bit_depth - 8)
    return torch.round(16 * scale + 219 * scale * luma).to(torch.int64)


def _ffmpeg_luma8(rgb: Tensor) -> Tensor:
    """swscale's BT.709 tv-range RGB24 -> Y (accurate_rnd, bitexact), in integer arithmetic."""
    shift = 15
    codes = torch.round(rgb.to(torch.float64).clamp(0, 1) * 255).to(torch.int64)
    coef = [int(round(k * 219 / 255 * (1 << shift))) for k in (0.2126, 0.7152, 0.0722)]
    acc = coef[0] * codes[..., 0, :, :] + coef[1] * codes[..., 1, :, :] + coef[2] * codes[..., 2, :, :]
    # 16 << 15 is the tv-range offset; the extra term rounds into the 8.6 fixed-point intermediate
    y14 = (acc + (32 << (shift - 1)) + (1 << (shift - 7))) >> (shift - 6)
    return ((y14 + 32) >> 6).clamp(0, 255)


def round_rgb(rgb: Tensor, bit_depth: int = 8) -> Tensor:
    """RGB in [0, 1] (any shape) rounded to ``bit_depth``-bit codes per channel without dither, back in [0, 1]."""
    top = float((1 << bit_depth) - 1)
    rgb = rgb if rgb.is_floating_point() else rgb.float()
    return torch.round(rgb.clamp(0.0, 1.0) * top) / top


def cambi_rgb(rgb: Tensor, reference: Tensor | None = None, **kw) -> Tensor:
    """CAMBI of a batch of RGB images: (B, 3, H, W) in [0, 1] -> (B,) float64 scores.

    Each channel is first rounded to ``kw.get("bit_depth", 8)``-bit codes without dither (``round_rgb``: what a
    file of that depth holds; dither or noise would hide banding from CAMBI's flat-pixel test, so it is never
    added here), then converted with ``rgb_to_luma_codes``. ``reference`` (B, 3, H, W) gives full-reference
    scores. Other keywords go to ``cambi``.
    """
    if rgb.ndim != 4:
        raise ValueError(f"cambi_rgb: expected (B, 3, H, W), got {tuple(rgb.shape)}")
    kw.pop("return_heatmap", None)
    bit_depth = kw.get("bit_depth", 8)
    codes = rgb_to_luma_codes(round_rgb(rgb, bit_depth), bit_depth)
    ref_codes = rgb_to_luma_codes(round_rgb(reference, bit_depth), bit_depth) if reference is not None else None
    scores = [
        cambi(codes[i], reference=None if ref_codes is None else ref_codes[i], **kw) for i in range(codes.shape[0])
    ]
    return torch.tensor(scores, dtype=torch.float64)


class CAMBI(torchmetrics.Metric):
    """Mean CAMBI over all images seen (lower is better).

    ``update(preds, target=None)``: preds (B, 3, H, W) RGB in [0, 1]; with ``full_reference=True`` the
    target (B, 3, H, W) is the reference. Scored as ``cambi_rgb`` does, on the images rounded to ``bit_depth``
    bits per channel without dither. State: a float64 sum and a count, summed across processes.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        *,
        bit_depth: int = 8,
        window_size: int = 65,
        topk: float = 0.6,
        tvi_threshold: float = 0.019,
        max_log_contrast: int = 2,
        full_reference: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        _check_params(window_size, topk, tvi_threshold, max_log_contrast, "bt1886")
        self.cambi_kw = dict(
            bit_depth=bit_depth,
            window_size=window_size,
            topk=topk,
            tvi_threshold=tvi_threshold,
            max_log_contrast=max_log_contrast,
        )
        self.full_reference = full_reference
        self.add_state("score_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor | None = None) -> None:
        if self.full_reference and target is None:
            raise ValueError("CAMBI(full_reference=True).update needs a target (the reference images)")
        ref = target.detach().cpu() if self.full_reference and target is not None else None
        # cambi_rgb rounds to bit_depth bits per channel, no dither: float network outputs are scored as the
        # 8-bit file they would become, not as their unrounded (or dithered) values
        scores = cambi_rgb(preds.detach().cpu(), reference=ref, **self.cambi_kw)
        self.score_sum += scores.sum().to(self.score_sum.device)
        self.count += scores.numel()

    def compute(self) -> Tensor:
        return self.score_sum / self.count.clamp(min=1)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
