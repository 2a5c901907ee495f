"""Explanations during ``paddle.Model.fit``: a ``paddle.callbacks.Callback`` over the same session
as the PaddleX hook (:class:`~paddlex_interpret.training.session.ExplainSession`).

At the end of every epoch (``trigger='epoch_end'``, default) or of every evaluation inside ``fit``
(``trigger='eval_end'``), thinned by ``freq``, the callback explains the probe images with LIME
(and NormLIME-filtered LIME when ``normlime_data`` is given), scores them and logs panels, scalars
and text to VisualDL, step = number of completed epochs. The network is wrapped in a
:class:`~paddlex_interpret.adapters.layer.LayerClassifier` with ``preprocess`` (``(B, H, W, 3)``
uint8 -> ``(B, C, H, W)`` float, see :func:`make_preprocess`) and ``probe_size``, so the fit path
has the same fused composition and inference engine as the PaddleX one.

Logs go to ``logdir`` (default ``vdl_log/explain``): pair it with
``paddle.callbacks.VisualDL(log_dir="vdl_log")`` and one ``visualdl --logdir vdl_log`` shows the
loss curves and the explanations. VisualDL reads one record file per directory, hence the
sub-directory. With ``save_dir`` (the one given to ``fit``) the NormLIME weights of each
explained epoch are written next to Paddle's checkpoints, under the hook's file name, as
``<save_dir>/<epoch>/normlime_weights.npz`` (``<epoch>`` 0-based, like Paddle's
``<epoch>.pdparams``).

Multi-card: every rank runs the callback; every rank builds its share of the NormLIME weights
(:mod:`~paddlex_interpret.training.ranks`, unless ``shared_normlime=False``), then rank 0 alone
explains the probes and writes; the others go on to the next collective.

Example::

    import paddle
    import paddlex_interpret
    from paddlex_interpret.callbacks import ExplainCallback, make_preprocess

    model = paddle.Model(net)
    model.prepare(paddle.optimizer.Adam(parameters=net.parameters()),
                  paddle.nn.CrossEntropyLoss(), paddle.metric.Accuracy())
    cb = ExplainCallback(probe_images, preprocess=make_preprocess(), logdir="vdl_log/explain",
                         normlime_data=(val_images, val_labels), label_names=["a", "b"])
    model.fit(train_ds, eval_ds, epochs=5, callbacks=[cb, paddle.callbacks.VisualDL("vdl_log")])
"""
import glob
import logging
import os
import time

import numpy as np
import paddle

from ..runtime.distributed import cpu_share
from ..runtime.modes import get_rank
from .ranks import SharedNormLime
from .report import WEIGHTS_FILENAME, CheckpointJob
from .session import ExplainSession

__all__ = ["ExplainCallback", "make_preprocess", "DEFAULT_LOGDIR"]

logger = logging.getLogger("paddlex_interpret")

DEFAULT_LOGDIR = os.path.join("vdl_log", "explain")


def make_preprocess(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), scale=1.0 / 255.0,
                    size=None):
    """A ``preprocess`` for :class:`ExplainCallback` / ``LayerClassifier``: ``(B, H, W, 3)`` uint8
    -> ``(B, 3, H', W')`` float32, ``(x * scale - mean) / std`` per channel, optionally resized to
    ``size`` (int or ``(h, w)``, bilinear) first. The defaults are ImageNet's mean and std on
    [0, 1], as ``paddlex.transforms.Normalize()`` uses.

    >>> import numpy as np
    >>> make_preprocess()(np.full((2, 4, 4, 3), 255, np.uint8)).shape
    (2, 3, 4, 4)
    """
    mean = np.asarray(mean, dtype=np.float32).reshape(1, 1, 1, -1)
    std = np.asarray(std, dtype=np.float32).reshape(1, 1, 1, -1)
    if size is not None and np.isscalar(size):
        size = (int(size), int(size))

    def preprocess(images):
        images = np.asarray(images)
        if size is not None and images.shape[1:3] != tuple(size):
            import cv2

            images = np.stack([cv2.resize(im, (size[1], size[0]),
                                          interpolation=cv2.INTER_LINEAR) for im in images])
        x = images.astype(np.float32) * np.float32(scale)
        x = (x - mean) / std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    return preprocess


class ExplainCallback(paddle.callbacks.Callback):
    """Explain probe images during ``paddle.Model.fit`` and log them to VisualDL.

    Args:
        probes: image paths or uint8 arrays (``(H, W, 3)``), or None (none).
        preprocess: ``(B, H, W, 3)`` uint8 -> ``(B, C, H, W)`` float for the network (default:
            scale to [0, 1], channels first); :func:`make_preprocess` builds the usual ones.
        probe_size: resize probes (int or ``(h, w)``) to the network's input size first.
        logdir: VisualDL directory (default ``vdl_log/explain``).
        save_dir: the ``save_dir`` given to ``fit``: NormLIME weights files go there
            (``<save_dir>/<epoch>/normlime_weights.npz``).
        trigger: ``'epoch_end'`` or ``'eval_end'`` (after the evaluation ``fit`` runs every
            ``eval_freq`` epochs).
        normlime_data: images for the NormLIME weights: a sequence of paths/arrays, an
            ``(N, H, W, 3)`` array, or a pair ``(images, labels)`` (labels stratify the budget).
        label_names: class names (titles, text).
        weights_builder: a :class:`~paddlex_interpret.training.builders.WeightsBuilder` or a
            function ``f(context) -> GlobalWeights`` replacing the default builder.
        backend: how the network runs (see
            :class:`~paddlex_interpret.adapters.base.PaddleClassifier`).
        shared_normlime: in a multi-card ``fit`` (without ``weights_builder``), every rank
            builds its share of the NormLIME weights; False: rank 0 alone.
        **options: ``probe_labels``, ``probe_names`` and the
            :class:`~paddlex_interpret.training.options.ExplainOptions` (``num_samples``,
            ``seed``, ``freq``, ``normlime``, ``max_images``, ``metrics``...).
    """

    def __init__(self, probes=None, preprocess=None, probe_size=None, logdir=DEFAULT_LOGDIR,
                 save_dir=None, trigger="epoch_end", normlime_data=None, label_names=None,
                 weights_builder=None, backend="auto", shared_normlime=True,
                 **options):
        super().__init__()
        from ..runtime.policy import check_backend

        check_backend(backend)
        self.backend = backend
        #: the classifier of the last explained epoch (a LayerClassifier of the network)
        self.classifier = None
        if trigger not in ("epoch_end", "eval_end"):
            raise ValueError("trigger must be 'epoch_end' or 'eval_end', got %r" % (trigger,))
        self.session = ExplainSession(probes, logdir=logdir, weights_builder=weights_builder,
                                      **options)
        self.preprocess = preprocess
        if probe_size is not None and np.isscalar(probe_size):
            probe_size = (int(probe_size), int(probe_size))
        self.probe_size = probe_size
        self.save_dir = save_dir
        self.trigger = trigger
        self.label_names = list(label_names) if label_names is not None else None
        dataset = None
        if normlime_data is not None:
            if isinstance(normlime_data, tuple) and len(normlime_data) == 2:
                items, labels = normlime_data
                labels = [int(l) for l in np.asarray(labels).reshape(-1)]
                dataset = list(zip(list(items), labels))
            else:
                dataset = list(normlime_data)
        self.dataset = dataset
        self._in_fit = False
        self._epoch = None
        self._epochs = None
        self._share = shared_normlime and weights_builder is None
        self._shared = None
        self._said_weights_dir = False

    # ------------------------------------------------------------------ paddle hooks
    def on_train_begin(self, logs=None):
        self._in_fit = True
        self._epoch = None
        self._epochs = (self.params or {}).get("epochs")
        self.session.reset_run()
        self._shared = SharedNormLime.for_run(self.session, self._share)

    def on_train_end(self, logs=None):
        self._in_fit = False
        self.session.flush()

    def on_epoch_begin(self, epoch=None, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self._epoch = epoch
        if self.trigger == "epoch_end":
            self._checkpoint(epoch)

    def on_eval_end(self, logs=None):
        if self.trigger == "eval_end" and self._in_fit and self._epoch is not None:
            self._checkpoint(self._epoch)

    # ------------------------------------------------------------------ the work
    def _checkpoint(self, epoch):
        try:
            from ..adapters.layer import LayerClassifier

            network = self.model.network
            classifier = LayerClassifier(network, preprocess=self.preprocess,
                                         label_names=self.label_names,
                                         input_size=self.probe_size, backend=self.backend)
            self.classifier = classifier
            context = CheckpointJob(
                epoch=int(epoch) + 1, checkpoint_dir=self._weights_dir(epoch),
                dataset=self.dataset, label_names=self.label_names,
                is_last=self._epochs is not None and int(epoch) + 1 >= int(self._epochs),
            ).context(classifier, network)
        except Exception:  # never raise into fit
            logger.exception("explanations: could not prepare the checkpoint at epoch %s", epoch)
            return None
        if self._shared is None:
            return self.session.on_checkpoint(context)
        return self._shared_checkpoint(context, network)

    def _weights_dir(self, epoch):
        """The directory of epoch ``epoch``'s (0-based) NormLIME weights file: Paddle's
        checkpoint name ``<save_dir>/<epoch>`` as a directory, where the file has the hook's
        name (:data:`~paddlex_interpret.training.report.WEIGHTS_FILENAME`); None without
        ``save_dir``. Said once, with the files of the former name found there."""
        if self.save_dir is None:
            return None
        o = self.session.options
        if not self._said_weights_dir and get_rank() == 0 and o.normlime and o.save_weights:
            self._said_weights_dir = True
            former = sorted(glob.glob(os.path.join(glob.escape(self.save_dir),
                                                   "*." + WEIGHTS_FILENAME)))
            (logger.warning if former else logger.info)(
                "explanations: the NormLIME weights of epoch N go to %s%s (the training hook's "
                "file name)%s", os.path.join(self.save_dir, "N", ""), WEIGHTS_FILENAME,
                "; %d file(s) %s of the former name <epoch>.%s there are left as they are "
                "and no longer written" % (len(former), former[:2], WEIGHTS_FILENAME)
                if former else "")
        return os.path.join(self.save_dir, str(int(epoch)))

    def _shared_checkpoint(self, context, network):
        """Every rank builds its share of the weights, then rank 0 explains with them."""
        def make():
            from ..adapters.layer import LayerClassifier

            return LayerClassifier(network, preprocess=self.preprocess,
                                   label_names=self.label_names, input_size=self.probe_size,
                                   backend="inference", num_threads=cpu_share())

        t0 = time.perf_counter()
        try:
            self._shared.at_checkpoint(make, network, context.epoch, context.is_last,
                                       self.dataset)
            if get_rank() != 0:
                return None
            decided, fields = self._shared.take(context.epoch)
            if not decided:
                return None
            for name, value in fields.items():
                setattr(context, name, value)
            return self.session.explain_checkpoint(context)
        except Exception as exc:  # the guard of last resort: training must go on
            self.session.log_error(None, context, "checkpoint", exc)
            return None
        finally:
            self.session.schedule.add(time.perf_counter() - t0)

    def close(self):
        """Flush and close the VisualDL writer."""
        self.session.close()

    @property
    def history(self):
        return self.session.history
