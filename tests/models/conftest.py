"""Every model test starts from the same seed and runs single-threaded.

The shapes here are tiny: one thread is faster than two, and far faster when the 2-core CI machine is
busy (thread contention made some tests 10x slower). The previous thread count is restored afterwards.
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
