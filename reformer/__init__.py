"""Reformer: The Efficient Transformer, reproduced in PyTorch."""

__version__ = "0.1.0"
