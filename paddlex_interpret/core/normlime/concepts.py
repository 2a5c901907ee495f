"""Concepts for NormLIME: every superpixel of every image is mapped to one of K learned concepts.

A superpixel is described by colour and texture statistics of its pixels (no model involved), and a
scikit-learn KMeans fitted once on the superpixels of a dataset turns descriptors into concept ids.

Why this descriptor (see the report in BENCHMARKS.md, "NormLIME and GLIME"): it is fixed for a
whole training run (concept weights built at different checkpoints are comparable, which the
training hooks rely on), it needs no forward pass and no download (PaddleX 1.3 downloaded an
ImageNet ResNet50 stem and a KMeans pickle), and on the coloured-shapes data it separates the
deciding object from the background better than the model's own early features.

Descriptor ``'lab_std_texture'`` (the default), per superpixel, 11 numbers:

* mean and standard deviation of CIE Lab (L in [0, 100], a and b in about [-128, 127]);
* mean Sobel gradient magnitude of L, and the share of gradient energy in 4 orientation bins
  (0, 45, 90, 135 degrees, unsigned).

Each feature is standardised with the mean/std of the fit set (stored with the codebook), then
the groups are weighted (colour mean 1, colour std 0.5, texture 0.5 in total) so that colour
decides first and texture separates similar colours. ``'lab'`` (mean Lab only) and ``'lab_std'``
are also available.

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.normlime.concepts import ConceptCodebook
    >>> rng = np.random.default_rng(0)
    >>> imgs = [np.where(rng.random((32, 32, 1)) < 0.5, [200, 30, 30], [90, 90, 90])
    ...         .astype(np.uint8) for _ in range(4)]
    >>> halves = lambda im: (np.arange(32)[None, :] >= 16).repeat(32, 0).astype(int)
    >>> cb = ConceptCodebook().fit(imgs, segmenter=halves, n_concepts=2, seed=0)
    >>> cb.assign(imgs[0], halves(imgs[0])).shape
    (2,)
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import numpy.typing as npt

from ...errors import NormLimeCacheError
from ...io import atomic_write
from ..images import describe_item, load_item, to_rgb_uint8
from ..segmentation import (SEGMENTERS, MemoSegmenter, Segmenter, SegmenterSpec, make_segmenter,
                           relabel)
from ..sharding import LOCAL, Collective, checked, gather_in_order, is_local, positions

__all__ = ["DESCRIPTORS", "DEFAULT_DESCRIPTOR", "superpixel_descriptors", "ConceptCodebook",
           "load_item", "describe_item"]

logger = logging.getLogger("paddlex_interpret")

#: descriptor name -> (feature group sizes, group weights)
DESCRIPTORS = {
    "lab": ((3,), (1.0,)),
    "lab_std": ((3, 3), (1.0, 0.5)),
    "lab_std_texture": ((3, 3, 5), (1.0, 0.5, 0.5)),
}
DEFAULT_DESCRIPTOR = "lab_std_texture"
_FORMAT = "paddlex_interpret.ConceptCodebook/1"


def _lab(image):
    import cv2

    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).astype(np.float64)


def _segment_means(values, flat, n, counts):
    """``(n, C)`` per-segment means of ``values (P, C)``."""
    return np.stack([np.bincount(flat, weights=values[:, c], minlength=n)
                     for c in range(values.shape[1])], axis=1) / counts[:, None]


def superpixel_descriptors(image: npt.ArrayLike, segments: npt.ArrayLike,
                           descriptor: str = DEFAULT_DESCRIPTOR) -> np.ndarray:
    """Raw (unstandardised) descriptors ``(n_segments, D)`` of the superpixels of ``image``.

    ``image`` is converted to uint8 RGB; ``segments`` is an ``(H, W)`` integer label map (relabelled
    to ``0..n-1``). Vectorised with ``np.bincount``.
    """
    if descriptor not in DESCRIPTORS:
        raise ValueError("unknown descriptor %r; choose one of %s"
                         % (descriptor, sorted(DESCRIPTORS)))
    image = to_rgb_uint8(image)
    segments = relabel(segments, image.shape)
    n = int(segments.max()) + 1
    flat = segments.ravel()
    counts = np.maximum(np.bincount(flat, minlength=n), 1).astype(np.float64)
    lab = _lab(image)
    pix = lab.reshape(-1, 3)
    mean = _segment_means(pix, flat, n, counts)
    parts = [mean]
    if descriptor in ("lab_std", "lab_std_texture"):
        sq = _segment_means(pix ** 2, flat, n, counts)
        parts.append(np.sqrt(np.maximum(sq - mean ** 2, 0.0)))
    if descriptor == "lab_std_texture":
        import cv2

        L = np.ascontiguousarray(lab[..., 0])
        gx = cv2.Sobel(L, cv2.CV_64F, 1, 0, ksize=3)
        gy = cv2.Sobel(L, cv2.CV_64F, 0, 1, ksize=3)
        mag = np.hypot(gx, gy).ravel()
        angle = np.mod(np.arctan2(gy, gx).ravel(), np.pi)  # unsigned orientation in [0, pi)
        bins = np.minimum((angle / (np.pi / 4) + 0.5).astype(np.int64) % 4, 3)
        energy = np.stack([np.bincount(flat, weights=mag * (bins == b), minlength=n)
                           for b in range(4)], axis=1)
        total = energy.sum(axis=1)
        share = np.where(total[:, None] > 0, energy / np.maximum(total, 1e-12)[:, None], 0.25)
        parts.append(np.concatenate([(total / counts)[:, None], share], axis=1))
    return np.concatenate(parts, axis=1)


def _describe_share(images, seg_fn, descriptor, load, progress, collective):
    """``(descriptors per readable image, skip reasons)`` of all ``images``, in image order; in
    a job every rank describes its positions and the lists are gathered."""
    total = len(images) if hasattr(images, "__len__") else None
    step = 1
    if is_local(collective):
        items: Iterable[tuple[int, Any]] = enumerate(images)
    else:  # rank 0's bar counts the whole list, as if every rank went at its pace
        images = list(images)
        items = [(int(p), images[int(p)]) for p in positions(len(images), collective)]
        total, step = len(images), int(collective.world)
        progress = progress and collective.rank == 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc="concepts", unit="img", total=total)
    records, skipped = [], []

    def work():
        for p, item in items:
            if bar is not None:
                bar.update(step if total is None else min(step, total - bar.n))
            try:
                image = load_item(item, load)
            except Exception as exc:  # a bad file in a dataset: skip it, count it, go on
                skipped.append((p, "%s: %s" % (describe_item(item), exc)))
                continue
            records.append((p, superpixel_descriptors(image, seg_fn(image), descriptor)))

    try:
        checked(collective, work)
    finally:
        if bar is not None:
            bar.close()
    descs = [d for _, d in gather_in_order(collective, records)]
    return descs, [m for _, m in gather_in_order(collective, skipped)]


class ConceptCodebook:
    """KMeans concepts over superpixel descriptors.

    Build with :meth:`fit` (or :meth:`load`), then :meth:`assign` concept ids to the superpixels of
    any image. The codebook is plain arrays (cluster centres and the standardisation), saved as a
    pickle-free ``.npz``; :meth:`fingerprint` identifies it in NormLIME weight caches.

    Attributes:
        centers (ndarray): ``(n_concepts, D)`` cluster centres in the standardised, weighted space.
        mean, scale (ndarray): ``(D,)`` standardisation of the raw descriptors.
        settings (dict): descriptor, n_concepts, seed, segmenter and its parameters,
            max_superpixels.
        fit_info (dict): images used and skipped, superpixels clustered, seconds.
    """

    def __init__(self, centers: npt.ArrayLike | None = None, mean: npt.ArrayLike | None = None,
                 scale: npt.ArrayLike | None = None, settings: Mapping[str, Any] | None = None,
                 fit_info: Mapping[str, Any] | None = None):
        self.centers = None if centers is None else np.asarray(centers, dtype=np.float64)
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64)
        self.settings = dict(settings or {})
        self.fit_info = dict(fit_info or {})

    # ------------------------------------------------------------------ basics
    @property
    def fitted(self) -> bool:
        return self.centers is not None

    @property
    def n_concepts(self) -> int:
        centers, _, _ = self._fitted()
        return int(centers.shape[0])

    @property
    def descriptor(self) -> str:
        return self.settings.get("descriptor", DEFAULT_DESCRIPTOR)

    def _fitted(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(centers, mean, scale)``; raises ``ValueError`` before :meth:`fit` or :meth:`load`."""
        if self.centers is None or self.mean is None or self.scale is None:
            raise ValueError("this ConceptCodebook is not fitted: call fit(images) or load(path)")
        return self.centers, self.mean, self.scale

    def _group_weights(self):
        sizes, weights = DESCRIPTORS[self.descriptor]
        return np.concatenate([np.full(s, w / np.sqrt(s)) for s, w in zip(sizes, weights)])

    def transform(self, descriptors: npt.ArrayLike) -> np.ndarray:
        """Raw descriptors -> the standardised, group-weighted space the centres live in."""
        if self.mean is None or self.scale is None:
            raise ValueError("this ConceptCodebook is not fitted: call fit(images) or load(path)")
        d = np.asarray(descriptors, dtype=np.float64)
        return (d - self.mean) / self.scale * self._group_weights()

    def make_segmenter(self) -> Segmenter | MemoSegmenter:
        """The segmenter the codebook was fitted with (a name and its parameters), rebuilt, so
        that an image is cut into the kind of superpixels its concepts were learnt on; a
        callable segmenter cannot be rebuilt and gives ``quickshift``."""
        name = self.settings.get("segmenter", "quickshift")
        params = dict(self.settings.get("segmenter_params") or {})
        seed = params.pop("seed", self.settings.get("seed", 0))
        if name not in SEGMENTERS:
            name, params = "quickshift", {}
        return make_segmenter(name, seed=seed, **params)

    # ------------------------------------------------------------------ fit
    def fit(self, images: Iterable[Any], segmenter: SegmenterSpec = "quickshift",
            n_concepts: int = 16, seed: int = 0, max_superpixels: int = 20000,
            descriptor: str = DEFAULT_DESCRIPTOR, segmenter_params: Mapping[str, Any] | None = None,
            load: Callable[[Any], npt.ArrayLike] | None = None, progress: bool = False,
            collective: Collective | None = None) -> ConceptCodebook:
        """Fit the concepts on the superpixels of ``images``; returns ``self``.

        Args:
            images: iterable of image paths or arrays (any bit depth / channels), or any items
                ``load`` turns into images. Items that fail to load are skipped and counted in
                ``fit_info`` (never a crash halfway); at least one must load.
            segmenter: as for :class:`~paddlex_interpret.core.lime.LimeExplainer` (use the one
                the explanations will use; quickshift by default).
            n_concepts: KMeans clusters (reduced to the number of distinct superpixels if fewer).
            seed: KMeans initialisation, superpixel subsampling and segmentation tie-breaking.
            max_superpixels: descriptors kept for KMeans (a seeded random subset beyond this).
            descriptor: one of :data:`DESCRIPTORS`.
            load: optional ``item -> image`` reader (e.g. ``PaddleXClassifier.view``).
            progress: tqdm progress bar.
            collective: a :class:`~paddlex_interpret.core.sharding.Collective`: every rank
                describes its share of ``images``, rank 0 fits on all of them (in order: the
                codebook one process would fit) and every rank gets its codebook.
        """
        if descriptor not in DESCRIPTORS:
            raise ValueError("unknown descriptor %r; choose one of %s"
                             % (descriptor, sorted(DESCRIPTORS)))
        n_concepts = int(n_concepts)
        if n_concepts < 2:
            raise ValueError("n_concepts must be >= 2, got %r" % n_concepts)
        t0 = time.perf_counter()
        seg_fn = make_segmenter(segmenter, seed=seed, **(segmenter_params or {}))
        descs, skipped = _describe_share(images, seg_fn, descriptor, load, progress, collective)
        if skipped:
            logger.warning("concept codebook: skipped %d unreadable image(s), e.g. %s",
                           len(skipped), skipped[0])
        if not descs:
            raise ValueError("no readable image to fit the concept codebook on (%d skipped)"
                             % len(skipped))
        job = collective or LOCAL

        def fit():  # on rank 0 only; the other ranks wait for its codebook
            if is_local(job) or job.rank == 0:
                self._fit_descriptors(descs, seg_fn, descriptor, n_concepts, seed,
                                      max_superpixels)
                self.fit_info.update(n_skipped=len(skipped), skipped=skipped[:20],
                                     seconds=time.perf_counter() - t0)

        checked(job, fit)
        if not is_local(job):
            fitted = job.broadcast(self.to_arrays() if job.rank == 0 else None)
            other = ConceptCodebook.from_arrays(fitted)
            self.centers, self.mean, self.scale = other.centers, other.mean, other.scale
            self.settings, self.fit_info = other.settings, other.fit_info
        return self

    def _fit_descriptors(self, descs, seg_fn, descriptor, n_concepts, seed, max_superpixels):
        """KMeans on the standardised descriptors of every image (a list, in image order)."""
        from sklearn.cluster import KMeans

        X = np.concatenate(descs, axis=0)
        n_total = len(X)
        rng = np.random.default_rng(seed)
        if max_superpixels and len(X) > int(max_superpixels):
            X = X[np.sort(rng.choice(len(X), int(max_superpixels), replace=False))]
        self.mean = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale = np.where(std > 1e-8, std, 1.0)
        desc_settings = seg_fn.describe()
        self.settings = {"descriptor": descriptor, "n_concepts": n_concepts, "seed": int(seed),
                         "max_superpixels": int(max_superpixels or 0),
                         "segmenter": desc_settings["segmenter"],
                         "segmenter_params": desc_settings["segmenter_params"]}
        Z = self.transform(X)
        k = min(n_concepts, len(np.unique(np.round(Z, 9), axis=0)))
        km = KMeans(n_clusters=k, random_state=seed, n_init=4).fit(Z)
        self.centers = km.cluster_centers_.astype(np.float64)
        self.fit_info = {"n_images": len(descs), "n_superpixels": int(n_total),
                         "n_clustered": int(len(X)), "n_concepts": int(k)}

    # ------------------------------------------------------------------ use
    def assign(self, image: npt.ArrayLike, segments: npt.ArrayLike) -> np.ndarray:
        """``(n_segments,)`` int64 concept id of each superpixel of ``image``."""
        centers, _, _ = self._fitted()
        Z = self.transform(superpixel_descriptors(image, segments, self.descriptor))
        d2 = (Z ** 2).sum(1)[:, None] - 2.0 * Z @ centers.T + (centers ** 2).sum(1)[None]
        return np.argmin(d2, axis=1).astype(np.int64)

    def occurrences(self, image: npt.ArrayLike, segments: npt.ArrayLike) -> np.ndarray:
        """``(n_concepts,)`` bool: which concepts occur among the superpixels of ``image``."""
        out = np.zeros(self.n_concepts, dtype=bool)
        out[self.assign(image, segments)] = True
        return out

    def concept_colours(self) -> np.ndarray:
        """``(n_concepts, 3)`` uint8 RGB: the mean colour (Lab, from the first three descriptor
        features) of each concept's centre, e.g. for a swatch beside its id."""
        import cv2

        fitted, mean, scale = self._fitted()
        centers = fitted[:, :3] / self._group_weights()[:3] * scale[:3] + mean[:3]
        lab = np.asarray(centers, np.float32).reshape(1, -1, 3)
        rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB).reshape(-1, 3)
        return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)

    def fingerprint(self) -> str:
        """A short hex digest of the centres, standardisation and settings: equal fingerprints mean
        equal concept assignments."""
        h = hashlib.sha256()
        for a in self._fitted():
            h.update(np.ascontiguousarray(a, dtype="<f8").tobytes())
        h.update(json.dumps(self.settings, sort_keys=True, default=str).encode("utf8"))
        return h.hexdigest()[:20]

    # ------------------------------------------------------------------ persistence
    def to_arrays(self, prefix: str = "") -> dict[str, Any]:
        """The codebook as named arrays (for embedding into another ``.npz``)."""
        centers, mean, scale = self._fitted()
        meta = {"format": _FORMAT, "settings": self.settings, "fit_info": self.fit_info}
        return {prefix + "centers": centers, prefix + "mean": mean, prefix + "scale": scale,
                prefix + "meta_json": np.frombuffer(
                    json.dumps(meta, default=str).encode("utf8"), dtype=np.uint8)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], prefix: str = "") -> ConceptCodebook:
        try:
            meta = json.loads(bytes(np.asarray(arrays[prefix + "meta_json"])).decode("utf8"))
            if meta.get("format") != _FORMAT:
                raise NormLimeCacheError("not a concept codebook (format %r)" % meta.get("format"))
            cb = cls(centers=np.asarray(arrays[prefix + "centers"]),
                     mean=np.asarray(arrays[prefix + "mean"]),
                     scale=np.asarray(arrays[prefix + "scale"]),
                     settings=meta.get("settings"), fit_info=meta.get("fit_info"))
        except NormLimeCacheError:
            raise
        except Exception as exc:
            raise NormLimeCacheError("corrupt concept codebook: %s" % exc) from exc
        centers, mean, scale = cb._fitted()
        d = centers.shape[1] if centers.ndim == 2 else -1
        if (centers.ndim != 2 or mean.shape != (d,) or scale.shape != (d,)
                or cb.descriptor not in DESCRIPTORS
                or d != sum(DESCRIPTORS[cb.descriptor][0])
                or not np.all(np.isfinite(centers))):
            raise NormLimeCacheError("corrupt concept codebook: inconsistent arrays")
        return cb

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write to ``path`` atomically (a pickle-free ``.npz``); returns the path."""
        path = os.fspath(path)
        with atomic_write(path, "wb") as f:
            np.savez(f, **self.to_arrays())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ConceptCodebook:
        """Read a codebook written by :meth:`save`.

        Raises:
            FileNotFoundError: no such file. NormLimeCacheError: not a (valid) codebook file.
        """
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError("concept codebook file does not exist: %r" % path)
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls.from_arrays({k: z[k] for k in z.files})
        except NormLimeCacheError:
            raise
        except Exception as exc:
            raise NormLimeCacheError("cannot read concept codebook %r: %s" % (path, exc)) from exc

    def __repr__(self) -> str:
        if not self.fitted:
            return "ConceptCodebook(unfitted)"
        return "ConceptCodebook(n_concepts=%d, descriptor=%r, segmenter=%r, fingerprint=%s)" % (
            self.n_concepts, self.descriptor, self.settings.get("segmenter"), self.fingerprint())
