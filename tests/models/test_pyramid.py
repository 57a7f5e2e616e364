import pytest
import torch
import torch.nn.functional as F

from src.models.pyramid import smooth_pyramid


@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (2, 3, 7, 33), (1, 1, 37, 53)])
def test_every_level_has_the_input_size(shape):
    levels = smooth_pyramid(torch.rand(*shape), 5)
    assert len(levels) == 6
    assert all(lv.shape == shape for lv in levels)


def test_a_linear_ramp_stays_in_place():
    # away from the borders every level reproduces a ramp exactly: no half-pixel drift between levels
    x = torch.arange(128.0).view(1, 1, 1, 128).expand(1, 1, 8, 128).contiguous()
    for lv in smooth_pyramid(x, 3):
        assert torch.allclose(lv[..., 32:96], x[..., 32:96], atol=1e-4)


def test_coarser_levels_undo_a_staircase():
    # a ramp quantized into 16-px steps: the wide levels recover the ramp under the steps
    x = torch.arange(64.0).view(1, 1, 1, 64).expand(1, 1, 8, 64).contiguous()
    q = torch.round(x / 16) * 16
    err = [float((lv - x)[..., 16:48].pow(2).mean().sqrt()) for lv in smooth_pyramid(q, 4)]
    assert err[4] < 0.1 * err[0]
    assert err[0] > err[1] > err[2] > err[3] > err[4]


def test_constant_image_is_unchanged():
    x = torch.full((1, 3, 9, 14), 0.3)
    assert all(torch.allclose(lv, x) for lv in smooth_pyramid(x, 4))


@pytest.mark.parametrize("shape", [(2, 3, 37, 50), (1, 1, 5, 3), (1, 3, 64, 64)])
def test_fast_pooling_matches_torch(shape):
    """The shifted-view forms of the blur and the max pools give exactly torch's pooling/conv results."""
    from src.baselines.filters import max2, max3
    from src.models.pyramid import _down, _pad_even

    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    c = shape[1]
    k = torch.tensor([0.25, 0.5, 0.25])
    p = F.pad(x, (1, 1 + shape[-1] % 2, 1, 1 + shape[-2] % 2), mode="replicate")
    p = F.conv2d(p, k.view(1, 1, 1, 3).expand(c, 1, 1, 3), groups=c)
    p = F.conv2d(p, k.view(1, 1, 3, 1).expand(c, 1, 3, 1), groups=c)
    torch.testing.assert_close(_down(x), F.avg_pool2d(p, 2), rtol=0, atol=1e-7)
    e = _pad_even(x, float("-inf"))
    assert torch.equal(max2(e), F.max_pool2d(e, 2))
    assert torch.equal(max3(x), F.max_pool2d(x, 3, stride=1, padding=1))
