"""Same seed, same bits: the same call gives ``np.array_equal`` results three times in one
process, in a fresh interpreter and with a progress bar, on the default ``backend='auto'``.

The backend is fixed before an explanation's first batch (runtime.policy), inference outputs do
not depend on the batch size or on which predictor ran them, and the progress bar only counts:
so no timing decision can change the numbers of an explanation in flight.
"""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from helpers import ROOT

SCRIPT = r"""
import hashlib, json, sys
import numpy as np
import paddlex_interpret, paddlex as pdx
model = pdx.load_model(sys.argv[1])
kind, image, dataset, save_dir = sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), sys.argv[5]
if kind == "lime":
    e = pdx.interpret.lime(image, model, num_samples=120, batch_size=40, save_dir=save_dir,
                           save_png=False, seed=5)
elif kind == "lime_auto":
    e = pdx.interpret.lime(image, model, num_samples="auto", batch_size=40, save_dir=save_dir,
                           save_png=False, seed=5, backend="inference")
else:
    e = pdx.interpret.normlime(image, model, dataset=dataset, num_samples=120, batch_size=40,
                               save_dir=save_dir, save_png=False, seed=5, max_images=12,
                               n_concepts=6)
arrays = [e.weights, e.probabilities] + [e.extra[k] for k in sorted(e.extra)]
print(json.dumps(hashlib.sha1(b"".join(a.tobytes() for a in arrays)).hexdigest()))
"""


def digest(e):
    arrays = [e.weights, e.probabilities] + [e.extra[k] for k in sorted(e.extra)]
    return hashlib.sha1(b"".join(a.tobytes() for a in arrays)).hexdigest()


def fresh_process(model_dir, kind, image, dataset, save_dir):
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", SCRIPT, model_dir, kind, image,
                          json.dumps(dataset), save_dir], capture_output=True, text=True,
                         cwd=ROOT, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["lime", "lime_auto", "normlime"])
def test_one_seed_gives_the_same_bits_in_one_process_and_a_fresh_one(pdx, trained_classifier,
                                                                     kind, tmp_path):
    model_dir = trained_classifier.best_model_dir
    model = pdx.load_model(model_dir)  # a model of its own: nothing measured for it yet
    val = trained_classifier.dataset.val_items()
    image, dataset = val[3][0], [p for p, _, _ in val[::5]]
    kw = dict(num_samples=120, batch_size=40, save_dir=str(tmp_path), save_png=False, seed=5)
    if kind == "normlime":
        kw.update(dataset=dataset, max_images=12, n_concepts=6)
    if kind == "lime_auto":  # the rounds of num_samples='auto' and where they stop (the
        # engine named: what this case checks is the rounds, not backend='auto''s choice)
        kw.update(num_samples="auto", backend="inference")
    call = getattr(pdx.interpret, kind.replace("_auto", ""))
    runs = [call(image, model, **kw) for _ in range(3)]
    with_bar = call(image, model, progress=True, **kw)
    for e in runs[1:] + [with_bar]:
        np.testing.assert_array_equal(e.weights, runs[0].weights)
        np.testing.assert_array_equal(e.probabilities, runs[0].probabilities)
        for k in runs[0].extra:
            np.testing.assert_array_equal(e.extra[k], runs[0].extra[k])
    assert runs[0].settings["backend"] in ("inference", "dygraph")
    assert runs[0].settings["path"] == runs[2].settings["path"]
    assert len({e.settings["num_samples_used"] for e in runs + [with_bar]}) == 1
    assert fresh_process(model_dir, kind, image, dataset, str(tmp_path / "fresh")) == \
        digest(runs[0])
