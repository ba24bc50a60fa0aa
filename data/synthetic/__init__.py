"""Synthetic tasks of the Mamba paper: Selective Copying and Induction Heads."""
