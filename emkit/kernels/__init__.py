"""Kernels: one pass over a block of rows, each with a NumPy reference twin."""
