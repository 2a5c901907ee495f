"""Test support, not installed with the package (setup.cfg finds ``paddlex_interpret`` only):
synthetic datasets with known ground truth, the tests' PaddleX training recipe and real
pretrained models, for the tests, the benches and the examples of a clone."""
