"""Initial (A, B) of a diagonal SSM: S4D-Lin, S4D-Inv and S4D-LegS (Gu et al. 2022, "On the
Parameterization and Initialization of Diagonal State Space Models", Sec. 4).

Each returns the N/2 modes kept of the N conjugate-paired ones, as float64 arrays:
``A_imag`` (N/2,) >= 0 (the real part is always -1/2) and ``B`` (N/2,) complex128.

- S4D-Lin:  A_n = -1/2 + i pi n,                       B_n = 1.
- S4D-Inv:  A_n = -1/2 + i N/pi (N/(2n+1) - 1),        B_n = 1.
- S4D-LegS: the diagonal part of HiPPO-LegS's normal-plus-low-rank form. LegS,
  A_nk = -sqrt(2n+1) sqrt(2k+1) (n > k), -(n+1) (n = k), 0 (n < k) and B_n = sqrt(2n+1),
  plus P P^T with P_n = sqrt(n + 1/2) is -1/2 I plus a skew-symmetric matrix S. Its
  eigenvalues are -1/2 + i w; B becomes V^* B in the eigenbasis V, with its imaginary part
  clipped to [-2, 2] as S4's implementation does (state-spaces/s4, ``hippo.nplr(B_clip=2.0)``).
  Of each conjugate pair the mode with w > 0 is kept (B conjugated alike), the convention of the
  other two inits; the kernel 2 Re(sum_n C_n B_n ...) is the same for the other choice with C
  conjugated, and C is drawn from a conjugation-invariant distribution.
"""

from __future__ import annotations

import math

import numpy as np

S4D_INITS = ("lin", "inv", "legs")
LEGS_B_CLIP = 2.0


def legs_normal_part(d_state: int) -> tuple[np.ndarray, np.ndarray]:
    """(S, B): HiPPO-LegS's A plus its rank-one correction P P^T, float64 (N, N), and B (N,)."""
    q = np.arange(d_state, dtype=np.float64)
    root = np.sqrt(2 * q + 1)
    A = -np.tril(np.outer(root, root), k=-1) - np.diag(q + 1)
    P = np.sqrt(q + 0.5)
    return A + np.outer(P, P), root


def legs_modes(d_state: int) -> tuple[np.ndarray, np.ndarray]:
    """S4D-LegS: (A_imag (N/2,) float64 >= 0 ascending, B (N/2,) complex128)."""
    S, B = legs_normal_part(d_state)
    skew = S - np.diag(np.diag(S))  # S = -1/2 I + skew
    frequencies, V = np.linalg.eigh(-1j * skew)  # Hermitian: skew V = i w V
    keep = np.argsort(frequencies)[d_state - d_state // 2 :]  # the w > 0 half
    B_modes = V[:, keep].conj().T @ B  # V^* B
    B_modes = B_modes.real + 1j * np.clip(B_modes.imag, -LEGS_B_CLIP, LEGS_B_CLIP)
    return frequencies[keep], B_modes


def diagonal_init(init: str, d_state: int) -> tuple[np.ndarray, np.ndarray]:
    """(A_imag (N/2,) float64, B (N/2,) complex128) of ``init`` ("lin", "inv" or "legs")."""
    if init not in S4D_INITS:
        raise ValueError(f"S4D: init must be one of {S4D_INITS}, got {init!r}")
    if d_state % 2 != 0 or d_state < 2:
        raise ValueError(f"S4D: d_state must be a positive even number (N/2 complex modes), got {d_state}")
    n = np.arange(d_state // 2, dtype=np.float64)
    ones = np.ones(d_state // 2, dtype=np.complex128)
    if init == "lin":
        return math.pi * n, ones
    if init == "inv":
        return d_state / math.pi * (d_state / (2 * n + 1) - 1), ones
    return legs_modes(d_state)
