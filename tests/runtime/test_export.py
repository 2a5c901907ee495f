"""paddlex_interpret.runtime.export: exporting a live layer leaves it as it was; the program
file layouts of Paddle 2.x and 3.x."""
import numpy as np
import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from helpers import fresh_model
from paddlex_interpret import PaddleXClassifier
from paddlex_interpret.runtime import export


def test_export_leaves_the_model_untouched(trained, probe_images):
    model = fresh_model(trained)
    net = model.net
    net.train()
    forward = net.forward
    before = PaddleXClassifier(model, backend="dygraph")(probe_images)
    PaddleXClassifier(model, backend="inference")(probe_images)
    assert net.training and net.forward == forward  # still train mode, no to_static left on it
    assert all(sub.training for sub in net.sublayers())
    np.testing.assert_array_equal(PaddleXClassifier(model, backend="dygraph")(probe_images), before)


def test_program_file_layouts(tmp_path):
    prefix = str(tmp_path / "model")
    with pytest.raises(export.ExportError):
        export.inference_files(prefix)
    open(prefix + ".json", "w").close()  # Paddle 3.x (PIR) program
    assert export.inference_files(prefix) == (prefix + ".json", prefix + ".pdiparams")
    open(prefix + ".pdmodel", "w").close()  # Paddle 2.x program
    assert export.inference_files(prefix)[0] == prefix + ".pdmodel"
