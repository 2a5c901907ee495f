"""Shared by the bench scripts: machine description and replacing one section of BENCHMARKS.md."""
import os
import platform
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(ROOT, "BENCHMARKS.md")


def machine_info():
    """One line: CPU model, cores, memory, Python, Paddle, PaddleX, numpy versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = "%.0f GiB RAM" % (kb / 2 ** 20)
    except (OSError, ValueError, IndexError):
        pass
    versions = []
    for mod in ("paddle", "paddlex", "numpy", "skimage", "sklearn"):
        m = sys.modules.get(mod)
        if m is not None:
            versions.append("%s %s" % (mod, getattr(m, "__version__", "?")))
    return "%s, %d cores, %s; Python %s; %s" % (cpu, os.cpu_count() or 0, mem,
                                                 platform.python_version(), ", ".join(versions))


def git_revision():
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                       stderr=subprocess.DEVNULL).decode().strip()
    except Exception:
        return "?"


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(title, body, command):
    """Replace (or append) the ``## title`` section of BENCHMARKS.md with ``body``."""
    import datetime

    text = open(BENCHMARKS).read() if os.path.exists(BENCHMARKS) else (
        "# Benchmarks\n\nEvery section is written by the script named in it; rerun it to refresh.\n")
    section = ("## %s\n\nCommand: `%s`  \nMachine: %s  \nDate: %s, commit %s\n\n%s\n"
               % (title, command, machine_info(), datetime.date.today().isoformat(),
                  git_revision(), body.strip()))
    pattern = re.compile(r"^## %s\n.*?(?=^## |\Z)" % re.escape(title), re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    tmp = BENCHMARKS + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, BENCHMARKS)
