"""Version shims that let PaddleX 2.1.0 run on current Paddle (2.6 and 3.x), in one place.

PaddleX 2.1.0 imports ``paddle.fluid.*``; Paddle 2.6 renamed ``paddle.fluid`` to ``paddle.base``.
:func:`install_fluid_alias` registers an import hook (a :class:`importlib.abc.MetaPathFinder` placed
*last* on ``sys.meta_path``) that answers only for ``paddle.fluid`` and its submodules, and only when
the real ones cannot be found, by importing the renamed module:

* ``paddle.fluid``            -> ``paddle.base``
* ``paddle.fluid.dataloader`` -> ``paddle.io.dataloader`` (moved out of ``fluid``)
* ``paddle.fluid.X``          -> ``paddle.base.X``

The hook does not import paddle itself, so it costs nothing until something asks for ``paddle.fluid``.
It is installed by ``import paddlex_interpret`` and, for scripts that ``import paddlex`` first, at
interpreter start-up by the ``paddlex_interpret-compat.pth`` file that ``pip install`` puts into
site-packages. :func:`patch_paddlex` fixes PaddleX's multi-card evaluation, which divides the
return value of ``paddle.distributed.all_reduce`` (an in-place op returning a task since Paddle 2.6),
and lets ``paddlex.deploy.Predictor`` open the ``model.json`` program Paddle 3 exports.

Example::

    import paddlex_interpret  # noqa: F401  (installs the alias)
    import paddlex as pdx      # works on Paddle 2.6 / 3.x
"""
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys

__all__ = ["install_fluid_alias", "enable_paddlex_plugin", "patch_paddlex", "ensure_paddlex",
           "quiet_import_noise", "FLUID_RENAMES", "IMPORT_NOISE"]

#: what PaddleX's dependencies print when imported (paddleslim imports pkg_resources; setuptools'
#: distutils hack), which no user can act on
IMPORT_NOISE = ("pkg_resources is deprecated", "Setuptools is replacing distutils")


def quiet_import_noise(environ=None):
    """For the package's own programs (the CLI, the examples, the hook's worker process): silence
    :data:`IMPORT_NOISE` in this process, and in ``environ`` (default ``os.environ``, which the
    processes this one starts inherit) through ``PYTHONWARNINGS``; Paddle's C++ INFO lines too
    (``GLOG_minloglevel=2``) unless set. Returns ``environ``."""
    import warnings

    environ = os.environ if environ is None else environ
    for text in IMPORT_NOISE:
        warnings.filterwarnings("ignore", message=".*%s.*" % text)
    filters = ["ignore:%s" % text for text in IMPORT_NOISE]
    old = environ.get("PYTHONWARNINGS")
    environ["PYTHONWARNINGS"] = ",".join(([old] if old else []) + filters)
    environ.setdefault("GLOG_minloglevel", "2")
    return environ

# Longest prefix first: the first match wins.
FLUID_RENAMES = (
    ("paddle.fluid.dataloader", "paddle.io.dataloader"),
    ("paddle.fluid", "paddle.base"),
)


def _target_name(fullname):
    for old, new in FLUID_RENAMES:
        if fullname == old or fullname.startswith(old + "."):
            return new + fullname[len(old):]
    return None


class _AliasLoader(importlib.abc.Loader):
    """Hands back an already imported module under a second name."""

    def __init__(self, target):
        self.target = target
        self._target_spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self._target_spec = module.__spec__
        return module

    def exec_module(self, module):
        # The import system stamped the alias spec on the shared module: put the real one back.
        module.__spec__ = self._target_spec


class FluidAliasFinder(importlib.abc.MetaPathFinder):
    """Resolve ``paddle.fluid[.x]`` to its renamed module when Paddle no longer has it.

    It sits first on ``sys.meta_path`` (so the path finder never executes ``paddle/base/*.py`` a
    second time under a ``paddle.fluid`` name) but answers only when ``paddle`` has no real
    ``fluid`` package. Once :func:`enable_paddlex_plugin` has run it also serves
    ``paddlex.interpret`` and patches ``paddlex`` right after it is imported.
    """

    def __init__(self):
        self.plugin_enabled = False
        self._busy = set()

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "paddlex" and self.plugin_enabled:
            return self._paddlex_spec(path)
        if fullname == "paddlex.interpret" and self.plugin_enabled:
            return importlib.util.spec_from_loader(fullname, _AliasLoader(PLUGIN_MODULE))
        if fullname != "paddle.fluid" and not fullname.startswith("paddle.fluid."):
            return None
        if fullname == "paddle.fluid":
            if importlib.machinery.PathFinder.find_spec(fullname, path) is not None:
                return None  # an old Paddle that still ships paddle.fluid
        elif not getattr(sys.modules.get("paddle.fluid"), "__name__", "").startswith("paddle.base"):
            return None
        new = _target_name(fullname)
        try:
            if new is None or importlib.util.find_spec(new) is None:
                return None
        except (ImportError, ValueError):
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(new))

    def _paddlex_spec(self, path):
        if "paddlex" in self._busy:
            return None
        self._busy.add("paddlex")
        try:
            spec = importlib.machinery.PathFinder.find_spec("paddlex", path)
        finally:
            self._busy.discard("paddlex")
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        original = spec.loader.exec_module

        def exec_module(module):
            original(module)
            _after_paddlex_import(module)

        spec.loader.exec_module = exec_module
        return spec


PLUGIN_MODULE = "paddlex_interpret.api.paddlex13"


def _after_paddlex_import(paddlex_module):
    """Attach ``paddlex.interpret`` (our PaddleX 1.3-compatible API) and apply the patches."""
    api = importlib.import_module(PLUGIN_MODULE)
    paddlex_module.interpret = api
    sys.modules["paddlex.interpret"] = api
    try:
        patch_paddlex()
    except Exception:  # a PaddleX without cv.models: ensure_paddlex() reports it when used
        pass


def _finder():
    for finder in sys.meta_path:
        if type(finder).__name__ == "FluidAliasFinder":
            return finder
    return None


def install_fluid_alias():
    """Register the ``paddle.fluid`` alias hook once (idempotent). Returns the finder."""
    finder = _finder()
    if finder is None:
        finder = FluidAliasFinder()
        sys.meta_path.insert(0, finder)
    paddle = sys.modules.get("paddle")
    if paddle is not None and not hasattr(paddle, "fluid"):
        # paddle already imported: bind the attribute too (``paddle.fluid.core`` style access).
        try:
            paddle.fluid = importlib.import_module("paddle.fluid")
        except ImportError:
            pass
    return finder


def enable_paddlex_plugin():
    """Make ``paddlex.interpret`` our API, now if paddlex is imported, else as soon as it is."""
    finder = install_fluid_alias()
    finder.plugin_enabled = True
    if "paddlex" in sys.modules:
        _after_paddlex_import(sys.modules["paddlex"])
    return finder


def _all_reduce_returning_tensor(all_reduce):
    def wrapped(tensor, *args, **kwargs):
        out = all_reduce(tensor, *args, **kwargs)
        # Paddle >= 2.6 reduces in place and returns a task (or None): give back the tensor.
        return tensor if out is None or not hasattr(out, "numpy") else out
    wrapped._paddlex_interpret_patched = True
    return wrapped


def _config_reading_pir_programs(config_class):
    class PirConfig(config_class):
        def enable_memory_optim(self, *args, **kwargs):
            # Paddle 3's memory_optimize_pass is not registered for PIR programs: creating the
            # predictor would fail with "Not find ... memory_optimize_pass".
            pass

    def config(*args):
        prog_file = args[0] if args else None
        # Paddle 3 exports ``model.json`` (PIR) where PaddleX 2.1's Predictor asks for model.pdmodel.
        if (isinstance(prog_file, str) and prog_file.endswith(".pdmodel")
                and not os.path.exists(prog_file)
                and os.path.exists(prog_file[:-len(".pdmodel")] + ".json")):
            return PirConfig(prog_file[:-len(".pdmodel")] + ".json", *args[1:])
        return config_class(*args)
    config._paddlex_interpret_patched = True
    return config


def _patch_deploy():
    """Let ``paddlex.deploy.Predictor`` open the models Paddle 3 exports (idempotent)."""
    from paddlex import deploy

    if not getattr(deploy.Config, "_paddlex_interpret_patched", False):
        deploy.Config = _config_reading_pir_programs(deploy.Config)


def patch_paddlex():
    """Patch PaddleX 2.1 for current Paddle: multi-card classifier evaluation on Paddle >= 2.6,
    and deployed Paddle 3 models in ``paddlex.deploy.Predictor`` (idempotent)."""
    import paddle
    from paddlex.cv.models import classifier

    _patch_deploy()

    dist = getattr(classifier.paddle, "distributed")
    if getattr(dist.all_reduce, "_paddlex_interpret_patched", False):
        return

    class _DistProxy:
        def __getattr__(self, name):
            return getattr(paddle.distributed, name)

        all_reduce = staticmethod(_all_reduce_returning_tensor(paddle.distributed.all_reduce))

    class _PaddleProxy:
        distributed = _DistProxy()

        def __getattr__(self, name):
            return getattr(paddle, name)

    classifier.paddle = _PaddleProxy()


def ensure_paddlex():
    """Import and return ``paddlex`` with the shims applied, or raise ImportError saying what to do."""
    install_fluid_alias()
    try:
        import paddlex
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "paddlex_interpret needs paddlex==2.1.0 on paddlepaddle 2.6 or 3.x "
            "(install with: pip install --no-deps paddlex==2.1.0 paddleslim==2.6.0, then the "
            "requirements in requirements/); importing paddlex failed: %s" % exc) from exc
    if not hasattr(paddlex, "cv") or not hasattr(paddlex.cv, "models"):
        raise ImportError(
            "paddlex %s has no paddlex.cv.models; paddlex_interpret needs paddlex==2.1.0"
            % getattr(paddlex, "__version__", "?"))
    if getattr(paddlex, "interpret", None) is None or not hasattr(paddlex.interpret, "lime"):
        _after_paddlex_import(paddlex)
    patch_paddlex()
    return paddlex
