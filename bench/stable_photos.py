"""Photos that packages ship, for the real-model benchmarks of explanation stability.

Tuning photos (the estimator, the segmentation and the stop rule were chosen on these) and
held-out photos (never looked at while choosing; reported separately). scikit-image ships
astronaut, chelsea, coffee, rocket, the stereo motorcycle, camera and coins; scikit-learn
china and flower; matplotlib Grace Hopper's portrait. Grey photos are repeated over three
channels. Every photo is given as the model sees it (its centre crop at the model's input size).
"""
import numpy as np

TUNING = ("chelsea", "coffee", "astronaut", "rocket", "motorcycle_right", "camera",
          "grace_hopper")
HELD_OUT = ("china", "flower", "coins")


def load(name):
    """The photo ``name`` as ``(H, W, 3)`` uint8 RGB (full size)."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        img = load_sample_image(name + ".jpg")
    elif name == "grace_hopper":
        import matplotlib.cbook as cbook
        from skimage.io import imread

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            img = imread(f)
    elif name in ("motorcycle_left", "motorcycle_right"):
        from skimage import data

        left, right, _ = data.stereo_motorcycle()
        img = left if name == "motorcycle_left" else right
    else:
        from skimage import data

        img = getattr(data, name)()
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3]).astype(np.uint8)


def views(names):
    """``{name: view}`` at the bench model's input (its evaluation crop,
    :func:`bench.real_model.view`)."""
    from bench import real_model as R

    return {n: R.view(load(n)) for n in names}
