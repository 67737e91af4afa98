"""Training: patch datasets, built-in offline corpora, and the trainer.

Nothing is imported here: use the submodules (``sr_domains.train.data``,
``sr_domains.train.corpora``, ...), which import their optional dependencies on first use.
"""
