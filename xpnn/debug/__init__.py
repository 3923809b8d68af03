"""Tools for finding where results go wrong: ``compare_backends`` runs one graph on several
devices (or with and without a device's passes) and names the first node whose value
differs; ``python -m xpnn.debug compare --model mlp --devices cpu,torch:cpu`` does it for
small built-in models (``models.py``) and exits with status 1 on a disagreement."""

from . import models
from .compare import TOLERANCES, Disagreement, Entry, Report, compare_backends

__all__ = ["models", "TOLERANCES", "Disagreement", "Entry", "Report", "compare_backends"]
