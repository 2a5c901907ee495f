"""Explanations during training: the session that explains a checkpoint (stages, schedule, the
VisualDL sink, the NormLIME weights builder, the report), the PaddleX ``model.train`` hook, its
worker process and the ``paddle.Model.fit`` callback. Importing it does not import Paddle."""
