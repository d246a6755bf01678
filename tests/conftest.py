import numpy as np
import pytest
import torch


def dense(fn, in_shape) -> np.ndarray:
    """Dense matrix of a linear map on tensors of ``in_shape`` (one item), built column by column."""
    n = int(np.prod(in_shape))
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *in_shape)
    cols = torch.stack([fn(b.unsqueeze(0)).squeeze(0).reshape(-1) for b in basis], 1)
    return cols.numpy()


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)
