"""``from paddlex_interpret.hooks import ExplainHook``: the PaddleX ``model.train`` hook (it lives
in :mod:`paddlex_interpret.training.hook`)."""
from .training.hook import EXPLAIN_SUBDIR, ExplainHook

__all__ = ["ExplainHook", "EXPLAIN_SUBDIR"]
