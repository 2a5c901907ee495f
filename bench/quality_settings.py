"""What the quality benches share: the superpixels of the Fashion-MNIST model's explanations
(``bench/bench_quality.py`` and ``bench/quality_fill_rule.py``, which it runs)."""

#: ``(segmenter name, its parameters)``: SLIC, about 40 superpixels on a 64 px image
SEGMENTER = ("slic", {"n_segments": 40, "compactness": 10.0})
