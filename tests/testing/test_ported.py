"""pxi_testing.ported: a ported state dict must fit the network exactly."""
import numpy as np
import paddle
import pytest

from pxi_testing.ported import load_exact, package_dirs


def _weights(net):
    return {k: np.full(tuple(v.shape), 0.5, np.float32) for k, v in net.state_dict().items()}


def test_a_fitting_state_dict_is_loaded_and_the_net_is_put_in_eval_mode():
    net = paddle.nn.Sequential(paddle.nn.Linear(3, 2), paddle.nn.Dropout(0.5))
    net.train()
    out = load_exact(net, _weights(net), "tiny")
    assert out is net and not net.training
    np.testing.assert_array_equal(net[0].weight.numpy(), np.full((3, 2), 0.5, np.float32))


@pytest.mark.parametrize("break_it, named", [
    (lambda w: w.pop("0.bias"), "missing ['0.bias']"),
    (lambda w: w.__setitem__("extra", np.zeros(1, np.float32)), "unexpected ['extra']"),
    (lambda w: w.__setitem__("0.weight", np.zeros((2, 3), np.float32)),
     "wrong shape ['0.weight']"),
])
def test_a_state_dict_that_does_not_fit_is_refused_by_name(break_it, named):
    net = paddle.nn.Sequential(paddle.nn.Linear(3, 2))
    before = net[0].weight.numpy().copy()
    weights = _weights(net)
    break_it(weights)
    with pytest.raises(ValueError, match=r"weights do not fit tiny: .*%s" % named.replace(
            "[", r"\[").replace("]", r"\]")):
        load_exact(net, weights, "tiny")
    np.testing.assert_array_equal(net[0].weight.numpy(), before)  # nothing half-loaded


def test_an_absent_package_has_no_directories():
    assert package_dirs("no_such_weights_package_pxi") == []
