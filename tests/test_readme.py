"""README.md's examples run as written: every ```python and ```bash block, in the README's
order, each in a fresh process, from a directory that holds a dataset in PaddleX's ImageNet
layout at ``data/`` (generated: the demo's kind, classes red, green and blue), with the
environment's ``bin`` on ``PATH`` (``paddlex``, ``paddlex-interpret``) and no network. A block
the tests cannot run (the demo and test commands, a server, an installation) is preceded by
``<!-- not run by tests/test_readme.py: <reason> -->``."""
import os
import re
import subprocess
import sys

import pytest

from pxi_testing.synthetic import make_shapes_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
NOT_RUN = "not run by tests/test_readme.py:"
BLOCK = re.compile(r"(?:<!--(?P<note>[^>]*)-->[ \t]*\n)?^```(?P<lang>[\w-]*)[ \t]*\n"
                   r"(?P<body>.*?)^```[ \t]*$", re.S | re.M)


def readme_blocks():
    """``[(language, body, note or None)]`` of README.md's fenced blocks, in order."""
    with open(README, encoding="utf8") as f:
        text = f.read()
    return [(m.group("lang"), m.group("body"), (m.group("note") or "").strip() or None)
            for m in BLOCK.finditer(text)]


def examples():
    return [(lang, body) for lang, body, note in readme_blocks()
            if lang in ("python", "bash") and not (note and note.startswith(NOT_RUN))]


def test_every_code_block_is_run_or_says_why_not():
    blocks = readme_blocks()
    assert len(blocks) >= 10, "the block pattern no longer finds README.md's examples"
    for lang, body, note in blocks:
        if note is not None:
            assert note.startswith(NOT_RUN) and len(note) > len(NOT_RUN) + 5, note
        assert lang in ("python", "bash", ""), "a %r block: run it here or mark it" % lang
    langs = [lang for lang, _ in examples()]
    assert langs.count("python") >= 6 and langs.count("bash") >= 2, langs


def run(lang, body, cwd, env):
    cmd = [sys.executable, "-c", body] if lang == "python" else ["bash", "-e", "-c", body]
    return subprocess.run(cmd, cwd=str(cwd), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=900)


@pytest.mark.slow
def test_the_readme_examples_run_as_written(tmp_path):
    make_shapes_dataset(str(tmp_path / "data"), num_train_per_class=24, num_val_per_class=8,
                        image_size=64, seed=0)
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""),
               GLOG_minloglevel="2")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    for i, (lang, body) in enumerate(examples()):
        proc = run(lang, body, tmp_path, env)
        out = proc.stdout.decode("utf8", "replace")
        assert proc.returncode == 0, "README example %d (%s) failed:\n%s\n---\n%s" % (
            i, lang, body, out[-4000:])
    # what the examples say they write
    for path in ("output/epoch_2/normlime_weights.npz", "output/epoch_4/normlime_weights.npz",
                 "output/best_model/model.yml", "output/inference_model/inference_model/model.yml",
                 "explain/val_0/lime_s1000-0.png", "nl.npz", "prior.npz"):
        assert (tmp_path / path).exists(), path
    assert any(f.endswith(".png") for f in os.listdir(str(tmp_path / "audit")))
