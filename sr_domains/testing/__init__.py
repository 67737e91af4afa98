"""Fixtures for tests and examples: tiny models and generated rasters/volumes/series.

Domain generators live in submodules (``sr_domains.testing.geo``, ``.medical``) so importing
this package needs only numpy and torch.
"""

from __future__ import annotations

from .models import ToySR, tiny_model

__all__ = ["ToySR", "tiny_model"]
