"""The convolution kernel of a diagonal SSM (S4D), K[h, l] = 2 Re(sum_n W[h, n] exp(dtA[h, n] l)): a Triton
kernel that never stores the (H, N, L) Vandermonde matrix, the PyTorch reference beside it, and the
dispatching entry point."""

from .interface import vandermonde_kernel
from .ref import vandermonde_kernel_ref

__all__ = ["vandermonde_kernel", "vandermonde_kernel_ref"]
