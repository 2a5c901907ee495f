"""``from paddlex_interpret.callbacks import ExplainCallback``: the ``paddle.Model.fit`` callback
(it lives in :mod:`paddlex_interpret.training.callback`)."""
from .training.callback import DEFAULT_LOGDIR, ExplainCallback, make_preprocess

__all__ = ["ExplainCallback", "make_preprocess", "DEFAULT_LOGDIR"]
