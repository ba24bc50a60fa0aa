"""Session-wide test set-up: on a machine without CUDA, every Triton kernel module is imported here
under ``TRITON_INTERPRET=1`` (tests/interpreted_kernels.py says why), before any test module; and the
tests marked ``gpu`` (deselected by default, run with ``-m gpu``) are skipped there rather than failed."""

import pytest
import torch
from interpreted_kernels import import_interpreted

if not torch.cuda.is_available():
    import_interpreted()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="marked gpu: needs a CUDA device, and this machine has none")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
