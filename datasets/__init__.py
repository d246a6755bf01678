"""Datasets: the embedded MNIST digits (offline) and the recipes of the paper datasets.

This package shadows Hugging Face's ``datasets``; the suite never depends on that one.
"""
from .embedded import CAPTIONS, caption, digits, load_digits, split_indices

__all__ = ["CAPTIONS", "caption", "digits", "load_digits", "split_indices"]
