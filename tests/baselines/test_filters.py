import pytest
import torch
import torch.nn.functional as F

from src.baselines.filters import max2, max3


@pytest.mark.parametrize("shape", [(2, 3, 37, 50), (1, 1, 5, 3), (1, 1, 1, 1), (3, 8, 6)])
def test_max3_is_torch_max_pool(shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref = F.max_pool2d(x if x.ndim == 4 else x[None], 3, stride=1, padding=1)
    assert torch.equal(max3(x), ref if x.ndim == 4 else ref[0])


def test_max2_is_torch_max_pool():
    x = torch.randn(2, 3, 10, 14, generator=torch.Generator().manual_seed(2))
    assert torch.equal(max2(x), F.max_pool2d(x, 2))
