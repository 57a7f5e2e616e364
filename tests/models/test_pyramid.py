import pytest
import torch

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
