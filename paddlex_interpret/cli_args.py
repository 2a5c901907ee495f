"""The command line's arguments: types that name a bad value, and the option groups the
sub-commands share (:mod:`paddlex_interpret.cli` builds the parser and runs the commands)."""
import argparse

from .core.fill import FILL_CHOICES as FILLS
from .core.normlime import MODES
from .core.sampling import SAMPLER_NAMES as SAMPLERS
from .core.segmentation import SEGMENTERS

__all__ = ["FILLS", "SEGMENTERS", "SAMPLERS", "GRADIENT_COMMANDS", "ALARM_EXIT", "HelpFormatter",
           "positive", "samples", "share", "positive_float",
           "explain_args", "gradient_args", "audit_args", "verbosity_args", "progress_args",
           "dataset_args", "DEVICE_HELP", "occlusion_args", "watch_args"]

DEVICE_HELP = ("cpu, gpu or gpu:N (default: Paddle's: the first card on a GPU build with a card "
               "visible, else the CPU); a GPU that is not there is an error")


class HelpFormatter(argparse.HelpFormatter):
    """Help that shows an option's default once: not for flags, not for ``None``, not when the
    help text already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("default" in text or default is None or default is argparse.SUPPRESS
                or isinstance(default, bool) or not action.option_strings):
            return text
        return text + " (default: %(default)s)"


#: the exit status of ``audit --fail-on-alarm`` when the verdict is "alarm": not 1 (an uncaught
#: error) nor 2 (a user error), so that a pipeline tells the three apart
ALARM_EXIT = 3


def positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an integer" % text) from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1, got %d" % value)
    return value


def samples(text):
    """``'auto'`` or an integer >= 1 (``--num-samples``)."""
    return text if text == "auto" else positive(text)


def share(text):
    """A number in (0, 1]."""
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError("must be in (0, 1], got %s" % text)
    return value


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text) from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0, got %s" % text)
    return value


def _image_args(p, seed_help):
    """What every explanation of one image takes: the model, the image, where, which classes."""
    p.add_argument("--model", required=True,
                   help="a PaddleX model directory (saved by training, or exported)")
    p.add_argument("--image", required=True, help="the image to explain")
    p.add_argument("--save-dir", default="./", help="where <image name>/*.png and .npz go")
    p.add_argument("--seed", type=int, default=0, help=seed_help)
    p.add_argument("--top-k", type=positive, default=1,
                   help="explain the k most probable classes (unless --labels)")
    p.add_argument("--labels", nargs="+", default=None,
                   help="classes to explain, by name or id (default: the top-k predicted)")


def explain_args(p, with_dataset=False):
    _image_args(p, "sampling and segmentation seed")
    from .core.lime import DEFAULT_NUM_SAMPLES, DEFAULT_SAMPLER, DEFAULT_SEGMENTER

    p.add_argument("--num-samples", type=samples, default=DEFAULT_NUM_SAMPLES,
                   help="LIME samples: 'auto' (rounds until the top 5 superpixels are "
                        "certified, at most 1000) or a number (exactly that many)")
    p.add_argument("--sampler", choices=SAMPLERS, default=DEFAULT_SAMPLER,
                   help="how masks are drawn ('bernoulli' is PaddleX 1.3's)")
    p.add_argument("--batch-size", type=positive, default=50, help="model batch size")
    p.add_argument("--fill", default="auto",
                   help="what hidden superpixels become: %s, or a colour 'R,G,B' ('black' is "
                        "PaddleX 1.3's; 'auto' chooses per image)" % ", ".join(FILLS))
    p.add_argument("--segmenter", choices=SEGMENTERS, default=DEFAULT_SEGMENTER,
                   help="superpixels (quickshift: PaddleX 1.3's settings; coarse: its "
                        "superpixels merged into at most 25 regions, a stabler top 5, less "
                        "faithful)")
    p.add_argument("--kernel-width", type=positive_float, default=0.25,
                   help="LIME's kernel width on the cosine distance")
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    progress_args(p)
    verbosity_args(p, default=argparse.SUPPRESS)
    if with_dataset:
        dataset_args(p, required=True)


#: sub-command -> what it computes (paddlex_interpret.api.saliency)
GRADIENT_COMMANDS = {"gradcam": "Grad-CAM", "smoothgrad": "SmoothGrad",
                     "integrated-gradients": "Integrated Gradients"}


def gradient_args(p, name):
    _image_args(p, "noise and segmentation seed")
    p.add_argument("--segmenter", choices=SEGMENTERS, default="quickshift",
                   help="superpixels for the per-superpixel scores")
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    if name == "gradcam":
        p.add_argument("--target-layer", default=None,
                       help="sub-layer name (default: the last convolution keeping 7 cells a "
                            "side)")
    elif name == "smoothgrad":
        p.add_argument("--n-samples", type=positive, default=25, help="noisy copies")
        p.add_argument("--noise", type=positive_float, default=0.15,
                       help="noise level, a share of the input's range")
    else:
        p.add_argument("--steps", type=positive, default=32, help="steps of the path integral")
    verbosity_args(p, default=argparse.SUPPRESS)


def verbosity_args(p, default):
    """--quiet / --verbose / --debug, before or after the sub-command (``default`` is
    ``argparse.SUPPRESS`` on a sub-command, so that it does not undo the main one's)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quiet", action="store_true", default=default,
                   help="warnings and errors only")
    g.add_argument("--verbose", action="store_true", default=default, help="debug messages too")
    p.add_argument("--debug", action="store_true", default=default,
                   help="show tracebacks of errors")


def progress_args(p):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="progress bars (default: on when stderr is a terminal)")
    g.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bars")


def dataset_args(p, required, weights=True):
    p.add_argument("--dataset", required=required,
                   help="dataset root (PaddleX ImageNet layout) or a folder of images")
    p.add_argument("--file-list", default="val_list.txt", help="relative to --dataset")
    p.add_argument("--label-list", default="labels.txt", help="relative to --dataset")
    if not weights:
        return
    p.add_argument("--mode", choices=MODES, default=MODES[0],
                   help="NormLIME weights: fast (PaddleX 1.3) or aggregate (LIME per image)")
    p.add_argument("--max-images", type=positive, default=None,
                   help="images the weights are built on (default 1000 fast, 100 aggregate)")


def audit_args(p):
    from .core.shortcut import FLIP_ALARM, IMAGES

    p.add_argument("--model", required=True,
                   help="a saved PaddleX model directory, or an exported inference model")
    p.add_argument("--max-images", type=positive, default=IMAGES,
                   help="images of --dataset (stratified by label when it has labels)")
    p.add_argument("--seed", type=int, default=0, help="selection and baseline seed")
    p.add_argument("--flip", type=share, default=FLIP_ALARM,
                   help="the share of the other classes' images a region's transplant must turn "
                        "into a class for an alarm")
    p.add_argument("--save-dir", default=None,
                   help="write atlas_<class>.png and audit.json there (created if needed)")
    p.add_argument("--fail-on-alarm", action="store_true",
                   help="exit with status %d when the verdict is 'alarm' (1 is a failure of "
                        "the program, 2 a user error)" % ALARM_EXIT)
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    verbosity_args(p, default=argparse.SUPPRESS)
    dataset_args(p, required=True, weights=False)


def occlusion_args(p):
    _image_args(p, "segmentation seed")
    p.add_argument("--cell", type=positive, default=None,
                   help="cell side in px (default: 16 cells along the short side)")
    p.add_argument("--window", type=positive, default=2, help="window side in cells")
    p.add_argument("--fill", default="auto",
                   help="what a hidden window shows: %s, or a colour 'R,G,B'" % ", ".join(FILLS))
    p.add_argument("--segmenter", choices=SEGMENTERS, default="quickshift",
                   help="superpixels for the per-superpixel scores")
    p.add_argument("--batch-size", type=positive, default=50, help="model batch size")
    p.add_argument("--device", default=None, help="paddle device, e.g. cpu or gpu:0")
    verbosity_args(p, default=argparse.SUPPRESS)


def watch_args(p):
    p.add_argument("run_dir", help="the training output directory (PaddleX 3 Global.output / "
                                   "PaddleClas output_dir, or a PaddleX 2 save_dir)")
    p.add_argument("--probes", nargs="+", required=True, help="images explained at every "
                                                              "checkpoint")
    p.add_argument("--probe-labels", nargs="+", type=int, default=None,
                   help="class id per probe to explain (default: the predicted class)")
    p.add_argument("--dataset", default=None,
                   help="NormLIME's and the class atlas's images: a dataset directory "
                        "(val.txt + label.txt, val_list.txt + labels.txt) or a folder of "
                        "images (default: a PaddleX 3 run's own evaluation set)")
    p.add_argument("--logdir", default=None,
                   help="VisualDL directory (default: RUN_DIR/watch; PaddleX 2: "
                        "RUN_DIR/vdl_log/watch)")
    p.add_argument("--until-epoch", type=positive, default=None,
                   help="stop after this epoch's checkpoint")
    p.add_argument("--idle-timeout", type=positive_float, default=None,
                   help="stop after this many seconds without a new checkpoint")
    p.add_argument("--once", action="store_true", help="explain what is there now, then stop")
    p.add_argument("--poll", type=positive_float, default=2.0,
                   help="seconds between reads of the directory")
    from .core.lime import DEFAULT_NUM_SAMPLES

    p.add_argument("--num-samples", type=samples, default=DEFAULT_NUM_SAMPLES,
                   help="LIME samples per probe (auto: until its top regions are certified)")
    p.add_argument("--max-images", type=positive, default=60,
                   help="dataset images of the NormLIME weights")
    p.add_argument("--atlas-max-images", type=positive, default=60,
                   help="dataset images of the class atlas")
    p.add_argument("--seed", type=int, default=0, help="sampling and selection seed")
    p.add_argument("--freq", type=positive, default=1,
                   help="explain every k-th checkpoint (and the last)")
    for name, what in (("normlime", "NormLIME weights"), ("metrics", "deletion/insertion AUC"),
                       ("atlas", "the class atlas and the shortcut alarm")):
        p.add_argument("--no-" + name, dest=name, action="store_false", help="no " + what)
    p.add_argument("--network", choices=("auto", "on", "off"), default="auto",
                   help="PaddleX 3 checkpoints: explain their network (gradients, the class "
                        "atlas; needs PaddleClas's ppcls), or their exported models (off)")
    p.add_argument("--device", default="cpu", help="paddle device of the explanations")
    p.add_argument("--threads", type=positive, default=None,
                   help="CPU threads (default: all cores but one)")
    p.add_argument("--nice", type=int, default=10,
                   help="lower this process's priority by this much (training comes first)")
    verbosity_args(p, default=argparse.SUPPRESS)
