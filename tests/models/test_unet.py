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
    single = torch.cat([net(x[i: i + 1], t[i: i + 1]) for i in range(3)])
    assert torch.allclose(batch, single, atol=1e-5)
    # the time embedding changes the output
    assert not torch.allclose(net(x[:1], torch.ones(1)), net(x[:1], torch.zeros(1)))


def test_residual_starts_close_to_identity():
    x = torch.rand(2, 3, 20, 20)
    assert torch.equal(UNet(width=8, depth=2, residual=True, head_init_std=0.0)(x, torch.ones(2)), x)
    near = UNet(width=8, depth=2, residual=True)(x, torch.ones(2))
    assert not torch.equal(near, x) and (near - x).abs().max() < 0.05


def test_options_blocks_attention_and_gradients():
    net = UNet(width=8, depth=2, blocks_per_level=2, attention=True, norm=True, channel_mult=[1, 2, 2],
               residual=False)
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


def test_context_blur_and_sin_frequency_options():
    net = UNet(width=8, depth=1, context_blur=[1.5, 4.0], sin_w0=2.0, residual=False)
    assert net.stem.in_channels == 9  # the image and two blurred copies
    for shape in [(1, 3, 1, 1), (2, 3, 21, 34)]:
        assert net(torch.rand(*shape), torch.rand(shape[0])).shape == shape
    assert net.down[0][0].act.w0 == 2.0
    with pytest.raises(ConfigError):
        UNet(context_blur=[0.0])
