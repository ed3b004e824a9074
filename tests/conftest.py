import pytest

from qsnn_explorer import TrainConfig
from qsnn_explorer.data import load_dataset


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits8x8")


@pytest.fixture
def small_cfg():
    """A config that trains in well under a second on the 8×8 digits."""
    return TrainConfig(dataset="digits8x8", hidden=(32,), num_steps=6, batch_size=64, lr=5e-3,
                       readout="membrane", loss="sum_ce", epochs=1, device="cpu")
