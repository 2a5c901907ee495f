"""One default everywhere: LimeExplainer, lime, normlime, glime, the training options (the hook
and the callback take them), and the CLI share the fill, the sampler, the budget and the
segmenter, all read from paddlex_interpret.core.lime."""
import inspect

import pytest

from paddlex_interpret.api.glime import glime
from paddlex_interpret.api.lime import lime
from paddlex_interpret.api.normlime import normlime
from paddlex_interpret.core import lime as core_lime
from paddlex_interpret.core.lime import LimeExplainer
from paddlex_interpret.training.options import ExplainOptions

DEFAULTS = {"fill": core_lime.DEFAULT_FILL, "sampler": core_lime.DEFAULT_SAMPLER,
            "num_samples": core_lime.DEFAULT_NUM_SAMPLES,
            "segmenter": core_lime.DEFAULT_SEGMENTER}


def test_the_defaults_are_the_measured_ones():
    assert DEFAULTS == {"fill": "auto", "sampler": "stratified", "num_samples": "auto",
                        "segmenter": "quickshift"}


@pytest.mark.parametrize("fn", [LimeExplainer.__init__, lime, normlime, glime],
                         ids=["LimeExplainer", "lime", "normlime", "glime"])
def test_every_function_shares_them(fn):
    params = inspect.signature(fn).parameters
    assert {name: params[name].default for name in DEFAULTS} == DEFAULTS


def test_the_training_options_share_them():
    options = ExplainOptions()
    assert {name: getattr(options, name) for name in DEFAULTS} == DEFAULTS


def test_the_command_line_shares_them():
    from paddlex_interpret.cli import build_parser

    parser = build_parser()
    for command in ("lime", "normlime", "glime"):
        sub = parser._subparsers._group_actions[0].choices[command]
        got = {name: sub.get_default(name) for name in DEFAULTS}
        assert got == DEFAULTS, command


def test_paddlex13_positional_num_samples_keeps_its_meaning():
    params = list(inspect.signature(lime).parameters)
    assert params[:5] == ["img_file", "model", "num_samples", "batch_size", "save_dir"]
    assert ExplainOptions(num_samples=3000).num_samples == 3000
    with pytest.raises(ValueError, match="num_samples"):
        ExplainOptions(num_samples="some")
