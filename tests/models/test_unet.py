import pytest
import torch

from src.models.unet import UNet, count_parameters, macs_per_pixel
from src.utils.errors import ConfigError


@pytest.mark.parametrize("activation", ["sin", "silu"])
def test_odd_size_single_image(activation):
    net = UNet(width=8, depth=3, activation=activation, residual=False)
    x = torch.rand(1, 3, 37, 53)
    y = net(x, torch.ones(1))
    assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (1, 3, 7, 101), (2, 3, 2, 3)])
def test_tiny_and_thin_images(shape):
    net = UNet(width=8, depth=2)
    assert net(torch.rand(*shape), torch.rand(shape[0])).shape == shape


def test_batch_with_per_sample_times_is_independent():
    torch.manual_seed(0)
    net = UNet(width=8, depth=2, residual=False).eval()
    x = torch.rand(3, 3, 16, 24)
    t = torch.tensor([1.0, 0.5, 0.1])
    batch = net(x, t)
    single = torch.cat([net(x[i : i + 1], t[i : i + 1]) for i in range(3)])
    assert torch.allclose(batch, single, atol=1e-5)
    # the time embedding changes the output
    assert not torch.allclose(net(x[:1], torch.ones(1)), net(x[:1], torch.zeros(1)))


def test_residual_starts_close_to_identity():
    x = torch.rand(2, 3, 20, 20)
    assert torch.equal(UNet(width=8, depth=2, residual=True, head_init_std=0.0)(x, torch.ones(2)), x)
    near = UNet(width=8, depth=2, residual=True)(x, torch.ones(2))
    assert not torch.equal(near, x) and (near - x).abs().max() < 0.05


def test_options_blocks_attention_and_gradients():
    net = UNet(width=8, depth=2, blocks_per_level=2, attention=True, norm=True, channel_mult=[1, 2, 2], residual=False)
    x = torch.rand(2, 3, 33, 17, requires_grad=True)
    net(x, torch.rand(2)).mean().backward()
    assert x.grad is not None and all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("unshuffle", [2, 4])
def test_unshuffle_keeps_any_size(unshuffle):
    net = UNet(width=8, depth=2, unshuffle=unshuffle, residual=False)
    for shape in [(1, 3, 1, 1), (2, 3, 37, 53)]:
        assert net(torch.rand(*shape), torch.rand(shape[0])).shape == shape
    assert UNet(width=8, depth=2, unshuffle=4).stem.in_channels == 48


def test_size_report():
    small, big = UNet(width=8, depth=2), UNet(width=16, depth=2)
    assert 0 < count_parameters(small) < count_parameters(big)
    assert 0 < macs_per_pixel(small) < macs_per_pixel(big)


@pytest.mark.parametrize("kwargs", [{"activation": "tanhh"}, {"width": 0}, {"depth": 2, "channel_mult": [1, 2]}])
def test_bad_config(kwargs):
    with pytest.raises(ConfigError):
        UNet(**kwargs)


def test_sin_frequency_option():
    assert UNet(width=8, depth=1, sin_w0=2.0).down[0][0].act.w0 == 2.0


@pytest.mark.parametrize("unshuffle", [1, 2])
def test_blend_head_any_size_and_starts_near_identity(unshuffle):
    net = UNet(width=8, depth=2, blend_levels=3, unshuffle=unshuffle, identity_logit=30.0, head_init_std=0.0)
    assert net.stem.in_channels == 12 * unshuffle**2  # the image and three smoother copies
    for shape in [(1, 3, 1, 1), (2, 3, 21, 34), (1, 3, 7, 101)]:
        x = torch.rand(*shape)
        # identity logit far above the others and a zero free correction: the input comes back
        assert torch.allclose(net(x, torch.ones(shape[0])), x, atol=1e-6)


def test_blend_head_mixes_its_candidates():
    from src.models.pyramid import smooth_pyramid

    x = torch.rand(1, 3, 16, 16)
    s = smooth_pyramid(x, 2)
    net = UNet(
        width=8,
        depth=1,
        blend_levels=2,
        identity_logit=-30.0,
        head_init_std=0.0,
        blend_max_change=None,
        blend_edge_range=None,
    )
    # identity switched off: an even mix of the two smooth copies
    assert torch.allclose(net(x, torch.ones(1)), (s[1] + s[2]) / 2, atol=1e-5)
    # with the clamp, no pixel moves further than blend_max_change from the input
    clamped = UNet(
        width=8,
        depth=1,
        blend_levels=2,
        identity_logit=-30.0,
        head_init_std=0.0,
        blend_max_change=0.01,
        blend_edge_range=None,
    )
    out = clamped(x, torch.ones(1))
    assert (out - x).abs().max() <= 0.01 + 1e-6
    assert torch.allclose(out, x + ((s[1] - x).clamp(-0.01, 0.01) + (s[2] - x).clamp(-0.01, 0.01)) / 2, atol=1e-5)


def test_blend_head_does_not_blur_across_an_edge():
    # a 4-bit ramp with a dark 2-px wire: all weight on the smooth copies (identity switched off)
    x = (torch.arange(96.0) / 96 * 0.3 + 0.3).view(1, 1, 1, 96).expand(1, 3, 64, 96).contiguous()
    x = torch.round(x * 15) / 15
    x[..., 60:62] = 0.05
    net = UNet(width=8, depth=1, blend_levels=3, identity_logit=-30.0, head_init_std=0.0)
    out = net(x, torch.ones(1))
    assert torch.allclose(out[..., 59:63], x[..., 59:63], atol=1e-6)  # the wire and the pixels beside it are left alone
    # further out only the finest copies (whose footprint misses the wire) may act: no dark halo
    assert (out[..., 50:59] - x[..., 50:59]).abs().max() < 0.5 / 15
    assert (out[..., 10:40] - x[..., 10:40]).abs().max() > 0.01  # while the banded ramp away from it is smoothed


@pytest.mark.parametrize(
    "kwargs",
    [
        {"blend_levels": -1},
        {"blend_levels": 2, "out_channels": 1},
        {"blend_levels": 2, "blend_edge_range": [0.2, 0.1]},
        {"blend_levels": 2, "blend_max_change": -0.1},
    ],
)
def test_bad_blend_config(kwargs):
    with pytest.raises(ConfigError):
        UNet(**kwargs)


def test_blend_candidates_stay_float32_under_bf16_autocast():
    # a 10-bit-fine ramp: bf16 would round the candidates to steps of 1/256 and re-create bands
    net = UNet(width=8, depth=1, blend_levels=2, identity_logit=30.0, head_init_std=0.0).eval()
    x = torch.linspace(0.5, 0.51, 64).view(1, 1, 1, 64).expand(1, 3, 16, 64).contiguous()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x, torch.ones(1))
    assert out.dtype == torch.float32
    assert torch.allclose(out, x, atol=1e-6)


def test_channels_last_gives_the_same_result():
    torch.manual_seed(0)
    a = UNet(width=8, depth=2, blend_levels=2, channels_last=False)
    b = UNet(width=8, depth=2, blend_levels=2, channels_last=True)
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 3, 21, 30)
    assert torch.allclose(a(x, torch.ones(2)), b(x, torch.ones(2)), atol=1e-5)
    assert b.stem.weight.is_contiguous(memory_format=torch.channels_last)


def test_candidates_same_with_and_without_gradients_and_input_untouched():
    """Inference builds the candidates in place; training (a gradient through the image) must not."""
    net = UNet(width=8, depth=1, blend_levels=3, blend_guided=[[4, 1e-4]]).eval()
    x = torch.rand(1, 3, 23, 40)
    keep = x.clone()
    with torch.inference_mode():
        fast = net._candidates(x)
    assert torch.equal(x, keep)
    xg = x.clone().requires_grad_(True)
    slow = net._candidates(xg)
    for a, b in zip(fast, slow):
        assert torch.equal(a, b.detach())
    sum(c.sum() for c in slow).backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()


def test_guided_candidates_join_the_blend_head():
    from src.baselines.guided import guided_filter, guided_scale

    spec = [[4, 1e-4], [8, 1e-3]]
    net = UNet(width=8, depth=1, blend_levels=1, blend_guided=spec, identity_logit=30.0, head_init_std=0.0)
    assert net.stem.in_channels == 3 * 4  # the image, one smooth copy, two guided copies
    for shape in [(1, 3, 1, 1), (2, 3, 21, 34)]:
        x = torch.rand(*shape)
        assert torch.allclose(net(x, torch.ones(shape[0])), x, atol=1e-6)
    # with the identity and the smooth copy zeroed out, the output is the mean of the clamped guided changes
    off = UNet(
        width=8,
        depth=1,
        blend_levels=1,
        blend_guided=spec,
        identity_logit=-30.0,
        head_init_std=0.0,
        blend_max_change=0.01,
    )
    with torch.no_grad():
        off.head.bias[4] = -30.0  # the smooth copy's logit (after the 3 colour channels and the identity's)
    x = torch.rand(1, 3, 24, 24)
    want = x + sum((guided_filter(x, r, e, scale=guided_scale(r)) - x).clamp(-0.01, 0.01) for r, e in spec) / 2
    assert torch.allclose(off(x, torch.ones(1)), want, atol=1e-5)


@pytest.mark.parametrize("spec", [[[0, 1e-3]], [[4, 0.0]], [[4.5, 1e-3]], [[4]], "4,1e-3", [[True, 1e-3]]])
def test_bad_guided_config(spec):
    with pytest.raises(ConfigError, match="blend_guided"):
        UNet(blend_levels=2, blend_guided=spec)
    with pytest.raises(ConfigError, match="blend_levels"):
        UNet(blend_levels=0, blend_guided=[[4, 1e-3]])


@pytest.mark.parametrize(
    "shape",
    [(2, 3, 37, 53), (1, 3, 5, 200), (1, 3, 64, 64), (1, 3, 1, 1), (1, 3, 40, 52), (2, 3, 36, 72), (2, 3, 100, 64)],
)
def test_fused_pad_and_space_to_depth_match_the_plain_ops(shape):
    import torch.nn.functional as F

    from src.models.unet import _cat_padded, _pad_to_multiple, _space_to_depth, _unshuffled_input

    xs = [torch.rand(*shape) for _ in range(3)]
    ref = _pad_to_multiple(torch.cat(xs, 1), 32)
    assert torch.equal(_cat_padded(xs, 32), ref)
    for r in (1, 2, 4):
        got = _space_to_depth(ref, r, channels_last=True)
        want = F.pixel_unshuffle(ref, r) if r > 1 else ref
        assert torch.equal(got, want) and got.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(_space_to_depth(ref, r, channels_last=False), want)
        for cl in (True, False):
            for dtype in (None, torch.bfloat16):
                fused = _unshuffled_input(xs, 32, r, cl, dtype)
                assert torch.equal(fused, want if dtype is None else want.to(dtype))
                assert fused.is_contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)


def test_space_to_depth_takes_views_and_odd_offsets():
    """Inputs that are views (a channel slice, a crop starting one column in) are written like dense ones."""
    from src.models.unet import _cat_padded, _space_to_depth, _unshuffled_input

    xs = [torch.rand(2, 3, 72, 40), torch.rand(2, 6, 72, 40)[:, 2:5], torch.rand(2, 3, 72, 44)[..., 1:41]]
    want = _space_to_depth(_cat_padded(xs, 32), 4, channels_last=True)
    for dtype in (None, torch.bfloat16, torch.float16):
        got = _unshuffled_input(xs, 32, 4, True, dtype)
        assert torch.equal(got, want if dtype is None else want.to(dtype))


def test_space_to_depth_input_passes_gradients():
    """An input with a gradient (what the global branch makes in training) is copied so autograd follows it."""
    from src.models.unet import _unshuffled_input

    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    _unshuffled_input([x * 2, x.detach()], 32, 4, True)[:, :48].sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 2.0))


def test_space_to_depth_input_exports_with_dynamic_sizes():
    """Graph capture (what ``python -m src.export`` to ONNX runs) takes the plain copies, for any size; the
    eager word copies give the same numbers."""
    net = UNet(width=8, depth=2, unshuffle=4, blend_levels=2).eval()
    m = 4 * 2**2  # the padding multiple
    hb, wb = torch.export.Dim("hb", min=1, max=64), torch.export.Dim("wb", min=1, max=64)
    with torch.no_grad():
        prog = torch.export.export(
            net, (torch.rand(1, 3, 2 * m, 3 * m), torch.ones(1)), dynamic_shapes=({2: m * hb, 3: m * wb}, None)
        )
        x, t = torch.rand(1, 3, 5 * m, 2 * m), torch.full((1,), 0.5)
        assert torch.allclose(prog.module()(x, t), net(x, t), atol=1e-5)


def test_global_branch_sees_the_whole_frame_and_starts_as_a_no_op():
    """The coarse pass: a smooth, bounded correction; untrained it changes almost nothing; a change at one
    end of a wide image reaches the other end (receptive field of the whole frame, not a crop's)."""
    from src.models.unet import GlobalBranch

    torch.manual_seed(0)
    branch = GlobalBranch(factor=8, width=8, depth=4, max_change=0.04)
    x = torch.rand(1, 3, 40, 600) * 0.1 + 0.45
    d = branch(x, torch.ones(1))
    assert d.shape == x.shape and d.abs().max() < 0.01
    with torch.no_grad():
        branch.net.head.weight.normal_(std=0.05)
        d = branch(x, torch.ones(1))
        assert d.abs().max() <= 0.04 + 1e-6  # the soft clamp
        y = x.clone()
        y[..., :, :16] = 0.9
        far = (branch(y, torch.ones(1)) - d)[..., :, 300:].abs().max()
    assert far > 0  # a change 300+ px away moves the correction
    # whole-net: any size, gradients reach the branch
    net = UNet(width=8, depth=2, unshuffle=2, blend_levels=2, global_branch={"factor": 4, "width": 8, "depth": 2})
    out = net(torch.rand(2, 3, 37, 53), torch.ones(2))
    assert out.shape == (2, 3, 37, 53)
    out.mean().backward()
    assert net.global_branch.net.head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("spec", [{"factor": 1}, {"max_change": 0}, {"nope": 3}, 5])
def test_bad_global_branch_config(spec):
    with pytest.raises((ConfigError, TypeError)):
        UNet(width=8, depth=2, global_branch=spec)
