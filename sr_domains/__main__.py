"""``python -m sr_domains`` = the ``sr-domains`` command."""

from .cli import console

console()
