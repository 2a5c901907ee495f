"""The pure core: segmentation, sampling, perturbation, surrogates, explanations, NormLIME and
metrics over numpy arrays. Nothing here imports Paddle, PaddleX or VisualDL."""
