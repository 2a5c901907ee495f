"""Exporting a live ``paddle.nn.Layer`` for Paddle Inference, and re-using the traced program
when only the weights change.

``paddle.jit.save`` spends most of its time converting and tracing the dygraph code; the program
it writes does not depend on the weights. :class:`TracedProgram` keeps that program and writes a
params file of the layer's current tensors in the layout ``jit.save`` used (verified byte for
byte at the first export), so a training hook pays the trace once per run and only a predictor
build per checkpoint.

Example::

    from paddlex_interpret.runtime.export import export_layer
    model_file, params_file = export_layer(net, (3, 224, 224), "/tmp/net")
"""
import logging
import os
import struct
import weakref

import numpy as np

__all__ = ["ExportError", "inference_files", "export_layer", "layer_structure", "TracedProgram"]

logger = logging.getLogger("paddlex_interpret")


class ExportError(RuntimeError):
    """The layer could not be exported to / loaded by Paddle Inference."""


class _FirstOutput:
    """Built lazily (needs paddle): a Layer returning the first output of ``inner``."""

    cls = None

    @classmethod
    def make(cls, inner):
        if cls.cls is None:
            import paddle

            class FirstOutput(paddle.nn.Layer):
                def __init__(self, inner):
                    super().__init__()
                    self.inner = inner

                def forward(self, x):
                    out = self.inner(x)
                    if isinstance(out, (list, tuple)):
                        out = out[0]
                    return out

            cls.cls = FirstOutput
        return cls.cls(inner)


def inference_files(prefix):
    """``(program_file, params_file)`` written by ``paddle.jit.save(layer, prefix)``: Paddle 2.x
    writes ``prefix.pdmodel``, Paddle 3.x (PIR) ``prefix.json``; weights are ``prefix.pdiparams``.
    Raises :class:`ExportError` when neither program file exists."""
    params = prefix + ".pdiparams"
    for ext in (".pdmodel", ".json"):
        if os.path.exists(prefix + ext):
            return prefix + ext, params
    raise ExportError("no inference program next to %s (looked for .pdmodel and .json)" % prefix)


def export_layer(layer, input_shape, prefix):
    """Export ``layer`` for inputs ``(batch, *input_shape)`` float32 with ``paddle.jit.save``.

    The layer is exported in eval mode; the train/eval flag of every sub-layer is restored after,
    and so is its ``forward`` (Paddle's dygraph-to-static conversion replaces the ``forward`` of
    converted sub-layers by a transformed copy). Returns :func:`inference_files` of ``prefix``."""
    import paddle

    subs = layer.sublayers(include_self=True)
    modes = [(sub, sub.training) for sub in subs]
    forwards = [(sub, "forward" in sub.__dict__, sub.__dict__.get("forward")) for sub in subs]
    layer.eval()
    try:
        spec = [paddle.static.InputSpec([None] + [int(s) for s in input_shape], "float32", "x")]
        with paddle.no_grad():
            paddle.jit.save(_FirstOutput.make(layer), prefix, input_spec=spec)
    except Exception as exc:
        raise ExportError("paddle.jit.save failed: %s: %s" % (type(exc).__name__, exc)) from exc
    finally:
        for sub, mode in modes:
            sub.training = mode
        for sub, had, forward in forwards:
            if had:
                sub.__dict__["forward"] = forward
            else:
                sub.__dict__.pop("forward", None)
    return inference_files(prefix)


def _state_tensors(layer):
    """``{tensor name: tensor}`` of every parameter and persistable buffer of ``layer`` (the names
    ``paddle.jit.save`` gives them in the program)."""
    return {t.name: t for t in layer.state_dict().values()}


def layer_structure(layer):
    """Which sub-layer objects make up ``layer`` (a replaced sub-layer, even one without tensors,
    changes the computation: the traced program must not be reused then)."""
    return tuple((name, id(sub)) for name, sub in layer.named_sublayers(include_self=True))


def _tensor_bytes(tensor):
    arr = np.ascontiguousarray(tensor.numpy())
    return arr, (memoryview(arr).cast("B") if arr.size else b"")


class TracedProgram:
    """The inference program of one layer and input shape, traced once, so that new weights only
    need a new params file.

    The ``.pdiparams`` file is ``save_combine``'s layout on Paddle 2.6 and 3.x alike: for every
    persistable variable, sorted by name, a small header (LoD and tensor versions, the serialized
    ``TensorDesc`` with dtype and dims) followed by the raw data. :meth:`from_export` reads the
    headers of the file ``jit.save`` wrote and keeps them only when writing the layer's tensors
    (named as in the program, sorted) after them reproduces that file byte for byte;
    :meth:`write` then writes the kept program bytes and a params file of the layer's *current*
    tensors (a copy, no trace). Anything unexpected (other names, shapes or dtypes) raises, and the
    caller traces again.
    """

    def __init__(self, layer, input_shape, program_bytes, program_ext, layout):
        self.ref = weakref.ref(layer)
        self.input_shape = tuple(input_shape)
        self.structure = layer_structure(layer)
        self.program_bytes = program_bytes
        self.program_ext = program_ext
        self.layout = layout  # [(name, header bytes, shape, dtype str, nbytes)], file order

    @classmethod
    def from_export(cls, layer, input_shape, model_file, params_file):
        """The reusable program of an export just written to ``model_file`` / ``params_file``, or
        None (reason logged at debug level) when the params file is not reproduced exactly."""
        try:
            with open(params_file, "rb") as f:
                raw = f.read()
            tensors = _state_tensors(layer)
            layout, i = [], 0
            for name in sorted(tensors):
                arr, data = _tensor_bytes(tensors[name])
                start = i
                i += 4  # uint32 LoDTensor version
                (lod_level,) = struct.unpack_from("<Q", raw, i)
                i += 8
                for _ in range(lod_level):
                    (size,) = struct.unpack_from("<Q", raw, i)
                    i += 8 + size
                i += 4  # uint32 Tensor version
                (desc_size,) = struct.unpack_from("<i", raw, i)
                i += 4 + desc_size
                header = raw[start:i]
                if raw[i:i + arr.nbytes] != bytes(data):
                    raise ValueError("data of %r differs from the layer's" % name)
                i += arr.nbytes
                layout.append((name, header, arr.shape, arr.dtype.str, arr.nbytes))
            if i != len(raw):
                raise ValueError("%d bytes left after the layer's %d tensors"
                                 % (len(raw) - i, len(layout)))
            with open(model_file, "rb") as f:
                program = f.read()
        except Exception as exc:
            logger.debug("paddle.inference: params layout not reproduced (%s: %s); every weight "
                         "change will trace again", type(exc).__name__, exc)
            return None
        return cls(layer, input_shape, program, os.path.splitext(model_file)[1], layout)

    def fits(self, layer, input_shape):
        """Same layer object, input shape and sub-layers as when traced."""
        return (self.ref() is layer and self.input_shape == tuple(input_shape)
                and self.structure == layer_structure(layer))

    def write(self, layer, prefix):
        """Write the program and ``layer``'s current tensors to ``prefix.{pdmodel|json}`` and
        ``prefix.pdiparams``; returns the two paths. Raises ``ValueError`` when the layer's
        tensors no longer match the traced layout."""
        tensors = _state_tensors(layer)
        if len(tensors) != len(self.layout):
            raise ValueError("the layer has %d tensors, the program %d"
                             % (len(tensors), len(self.layout)))
        model_file, params_file = prefix + self.program_ext, prefix + ".pdiparams"
        with open(params_file, "wb") as f:
            for name, header, shape, dtype, nbytes in self.layout:
                tensor = tensors.get(name)
                if tensor is None:
                    raise ValueError("tensor %r of the program is gone from the layer" % name)
                arr, data = _tensor_bytes(tensor)
                if arr.shape != shape or arr.dtype.str != dtype:
                    raise ValueError("tensor %r is now %s %s, was %s %s"
                                     % (name, arr.shape, arr.dtype.str, shape, dtype))
                f.write(header)
                f.write(data)
        with open(model_file, "wb") as f:
            f.write(self.program_bytes)
        return model_file, params_file

