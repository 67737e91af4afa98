"""Training: patch datasets, offline corpora, degradations, losses, the trainer and evaluation.

Nothing is imported here (it needs the ``[train]`` extra): use the submodules
(``sr_domains.train.data``, ``.corpora``, ``.losses``, ``.trainer``, ``.evaluate``), which import
their optional dependencies on first use.
"""
