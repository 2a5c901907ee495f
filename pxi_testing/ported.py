"""What the ported pretrained networks share: finding a weights package's files without importing
it, and loading a state dict that must fit the network exactly."""
import importlib.util


def package_dirs(package):
    """The directories of the installed ``package`` (an import name), found without importing it
    (a weights package may pin frameworks that are not installed); empty when it is absent."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return list(spec.submodule_search_locations)


def load_exact(net, weights, name):
    """``net`` in eval mode with ``weights`` (``{parameter name: array}``), which must hold every
    parameter of ``net`` with its shape and nothing else: a ported file that does not fit raises
    ``ValueError`` naming ``name`` and the first keys that are missing, unexpected or misshapen."""
    expected = net.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = sorted(k for k in set(expected) & set(weights)
                   if tuple(expected[k].shape) != tuple(weights[k].shape))
    if missing or unexpected or wrong:
        raise ValueError("weights do not fit %s: missing %s, unexpected %s, wrong shape %s"
                         % (name, missing[:5], unexpected[:5], wrong[:5]))
    net.set_state_dict(weights)
    net.eval()
    return net
