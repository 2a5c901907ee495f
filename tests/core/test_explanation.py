"""paddlex_interpret.core.explanation: the result object and its ``.npz`` round trip."""
import numpy as np

from helpers import RegionClassifier, grid_segments
from paddlex_interpret.core.explanation import Explanation
from paddlex_interpret.core.lime import LimeExplainer


def test_explanation_round_trips_through_npz(tmp_path):
    img = np.full((32, 32, 3), 230, np.uint8)
    exp = LimeExplainer(RegionClassifier(), num_samples=60, seed=0, label_names=["off", "on"],
                        ).explain(img, segments=grid_segments(), top_k=2)
    exp.extra["normlime"] = exp.weights * 2
    path = exp.save(tmp_path / "e.npz")
    back = Explanation.load(path)
    for name in ("image", "segments", "probabilities", "labels", "weights", "intercepts",
                 "scores", "local_predictions"):
        np.testing.assert_array_equal(getattr(back, name), getattr(exp, name))
    np.testing.assert_array_equal(back.extra["normlime"], exp.extra["normlime"])
    assert back.label_names == ["off", "on"] and back.settings == exp.settings
    assert back.local_weights == exp.local_weights
    assert list(tmp_path.iterdir()) == [tmp_path / "e.npz"]  # no temporary left behind
