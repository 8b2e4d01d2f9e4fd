# Shared set-up of the Python tests: float64 throughout, a fixed seed per test.
import pytest
import torch

import ddtrain


@pytest.fixture(autouse=True)
def _float64_and_seed():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture
def world():
    return ddtrain.init()


@pytest.fixture
def self_comm():
    """A one-process communicator (the serial reference, also under mpirun)."""
    return ddtrain._core.make_communicator("self")
