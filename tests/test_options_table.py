"""The README's table of options and their defaults is the code's (scripts/options_table.py), and
the entry points agree on every default they share, or say why not."""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _generator():
    spec = importlib.util.spec_from_file_location(
        "options_table", os.path.join(ROOT, "scripts", "options_table.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_table_is_generated_from_the_code():
    gen = _generator()
    with open(gen.README, encoding="utf8") as f:
        assert gen.readme_block(f.read()) == gen.block(), (
            "README.md's options table is stale: run scripts/options_table.py --write")


def test_the_entry_points_agree_on_their_defaults():
    gen = _generator()
    assert gen.disagreements() == {}, (
        "defaults that differ without a reason in DIFFERENCES, or a reason for defaults that "
        "agree")
    points = gen.entry_points()
    # the defaults every LIME entry point shares are the core's
    from paddlex_interpret.core.lime import (DEFAULT_FILL, DEFAULT_NUM_SAMPLES, DEFAULT_SAMPLER,
                                             DEFAULT_SEGMENTER)
    for defaults in points.values():
        assert defaults["num_samples"] == DEFAULT_NUM_SAMPLES
        assert defaults["sampler"] == DEFAULT_SAMPLER
        assert defaults["segmenter"] == DEFAULT_SEGMENTER
        assert defaults["fill"] == DEFAULT_FILL


def test_a_difference_is_found(monkeypatch):
    gen = _generator()
    monkeypatch.delitem(gen.DIFFERENCES, "save_dir")
    assert "save_dir" in gen.disagreements()
