"""What an exported Paddle inference program says before it runs: which Paddle can load it, and
what its output is.

Two formats: ``*.json`` (a PIR program, written by ``paddle.jit.save`` on Paddle 3.x by default)
and ``*.pdmodel`` (a ``ProgramDesc`` protobuf, Paddle 2.x or Paddle 3.x with
``FLAGS_enable_pir_api=0``). Paddle 3.x loads both; Paddle 2.6 crashes the process (a segfault in
``NaiveExecutor::CreateVariables``, nothing Python can catch) on a ``.json``, so
:func:`check_loadable` refuses one there before any Paddle call.

:func:`output_op` follows the program's fetched output back to the op that computes it (through
identity ``scale``/``assign`` steps that ``paddle.jit.save`` may add): ``'softmax'`` means the
outputs are probabilities already (PaddleClas's export appends a Softmax to its classifiers);
anything else is taken as logits.

Example::

    from paddlex_interpret.adapters.program import check_loadable, output_op
    check_loadable("output/best_model/inference/inference.json")   # raises on Paddle 2.x
    output_op("output/best_model/inference/inference.json")        # 'softmax'
"""
import json
import os
from typing import Optional

from ..errors import UnsupportedModelError

__all__ = ["paddle_version", "check_loadable", "output_op"]

_IDENTITY = ("scale", "assign", "share_data", "share_data_")


def paddle_version() -> Optional[str]:
    """The installed PaddlePaddle version, read without importing Paddle when it is not imported
    yet (None when it is not installed)."""
    import sys

    module = sys.modules.get("paddle")
    if module is not None and getattr(module, "__version__", None):
        return str(module.__version__)
    from importlib import metadata

    for dist in ("paddlepaddle", "paddlepaddle-gpu"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def check_loadable(program: str) -> None:
    """Raise :class:`~paddlex_interpret.errors.UnsupportedModelError` when the installed Paddle
    cannot load ``program``: a PIR ``.json`` program needs Paddle 3.0 or newer (Paddle 2.6
    crashes reading it, so this is checked before Paddle is asked)."""
    if not program.endswith(".json"):
        return
    version = paddle_version()
    major = int(version.split(".")[0]) if version and version.split(".")[0].isdigit() else None
    if major is not None and major < 3:
        raise UnsupportedModelError(
            "%s is a Paddle 3 (PIR) program; this is PaddlePaddle %s, which cannot read it (it "
            "crashes the process): run with PaddlePaddle >= 3.0 (e.g. PADDLE_STACK=paddle3), or "
            "export the model with FLAGS_enable_pir_api=0 to get an inference.pdmodel"
            % (program, version))


def _pir_output_op(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    ops = data["program"]["regions"][0]["blocks"][0]["ops"]
    producer = {}
    for op in ops:
        outs = op.get("O") or []
        for out in outs if isinstance(outs, list) else [outs]:
            if isinstance(out, dict) and "%" in out:
                producer[out["%"]] = op
    fetch = [op for op in ops if str(op.get("#", "")).endswith(".fetch")]
    if not fetch:
        return None
    op = fetch[0]
    for _ in range(len(ops)):
        inputs = op.get("I") or []
        if not inputs or not isinstance(inputs[0], dict) or inputs[0].get("%") not in producer:
            return None
        op = producer[inputs[0]["%"]]
        name = str(op.get("#", "")).split(".", 1)[-1]
        if name not in _IDENTITY or name == "scale":  # a PIR scale's factor is an input tensor
            return name
    return None


def _desc_output_op(path):
    from paddle.base.proto import framework_pb2

    with open(path, "rb") as f:
        desc = framework_pb2.ProgramDesc.FromString(f.read())
    ops = list(desc.blocks[0].ops)
    producer = {arg: op for op in ops for var in op.outputs for arg in var.arguments}
    fetch = [op for op in ops if op.type == "fetch"]
    if not fetch:
        return None
    op = fetch[0]
    for _ in range(len(ops)):
        args = [a for var in op.inputs if var.parameter == "X" for a in var.arguments]
        if not args or args[0] not in producer:
            return None
        op = producer[args[0]]
        if op.type not in _IDENTITY:
            return op.type
        if op.type == "scale":
            attrs = {a.name: a for a in op.attrs}
            if attrs.get("scale") is not None and attrs["scale"].f != 1.0 or \
                    attrs.get("bias") is not None and attrs["bias"].f != 0.0:
                return "scale"
    return None


def output_op(program: str) -> Optional[str]:
    """The type of the op that computes the program's (first) output, e.g. ``'softmax'``, or
    None when the program cannot be read that far."""
    try:
        if program.endswith(".json"):
            return _pir_output_op(program)
        if os.path.exists(program):
            return _desc_output_op(program)
    except Exception:  # an unexpected layout: the caller falls back to the values
        return None
    return None
