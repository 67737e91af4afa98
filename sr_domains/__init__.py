"""sr_domains: super-resolution for remote sensing and medical imaging that keeps geometry right."""

from __future__ import annotations

__version__ = "0.1.0"
