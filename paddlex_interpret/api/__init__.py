"""The user-facing API: ``lime`` / ``normlime`` / ``glime`` on PaddleX classifiers, NormLIME
weights (built, cached and checked), datasets, and where results are written. The PaddleX 1.3
facade ``paddlex.interpret`` is :mod:`~paddlex_interpret.api.paddlex13`."""
