"""README's "How a checkpoint is explained" names real code: every ``Class.method`` it names
exists, every training module it names is a file of the package, in the order the section walks
through them (the hook before its worker, the worker before the session, the sink last)."""
import importlib
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = ["paddlex_interpret.training.%s" % m for m in (
    "hook", "hook_worker", "worker", "report", "session", "stages", "builders", "atlas_stage",
    "sink", "schedule", "ranks", "callback", "watch")] + ["paddlex_interpret.core.lime"]


def section():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf8").read()
    start = text.index("### How a checkpoint is explained")
    end = text.index("\n#", start + 1)
    return text[start:end]


def named_things():
    """The package's classes by name, VisualDL's writer, and the modules the text calls into."""
    from visualdl import LogWriter

    out = {"LogWriter": LogWriter,
           "rendering": importlib.import_module("paddlex_interpret.rendering"),
           "worker": importlib.import_module("paddlex_interpret.training.worker")}
    for name in MODULES:
        module = importlib.import_module(name)
        out.update({k: v for k, v in vars(module).items() if isinstance(v, type)})
    return out


def test_the_walkthrough_names_what_the_code_has():
    text = section()
    known = named_things()
    named = re.findall(r"`([A-Za-z_]\w*)\.(\w+)", text)
    # the package's names (capitalised or known); PaddleX's own train_loop is not ours
    calls = [(c, m) for c, m in named if m != "py"
             and (c in known or c[0].isupper() and c != "BaseModel")]
    assert len(calls) >= 20, calls
    missing = ["%s.%s" % (c, m) for c, m in calls if not hasattr(known.get(c), m)]
    assert missing == []
    files = set(re.findall(r"`(\w+)\.py`", text))
    assert files and all(os.path.isfile(os.path.join(ROOT, "paddlex_interpret", "training",
                                                     f + ".py")) for f in files), files
    order = [text.index("`%s`" % n) for n in ("hook.py", "hook_worker.py", "worker.py",
                                               "session.py", "stages.py", "sink.py")]
    assert order == sorted(order)
