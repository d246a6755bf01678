"""Datasets: the embedded MNIST digits (offline) and the recipes of the paper datasets.

The digits' loaders are imported on first use, so that planning the DAG (which reads only
``datasets.fetch``) imports no torch.
"""
__all__ = ["CAPTIONS", "caption", "digits", "load_digits", "split_indices"]


def __getattr__(name):
    if name in __all__:
        from . import embedded
        return getattr(embedded, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
