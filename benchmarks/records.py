"""The benchmark results files (``benchmarks/results/*.json``): reading and writing them.

A results file maps row names to measurements. Every script that writes one goes
through :func:`merge`, which stamps each new row with ``meta``, where and when it was
measured, and merges the rows into the file by name (a row run again replaces the old
one; the others stay):

- ``commit``: the short git hash of the checkout, with ``-dirty`` when ``skssl/`` has
  changes that are not committed (the code measured is then not exactly the commit's);
- ``cpu``: the CPU model from ``/proc/cpuinfo``, whether it has AVX-512 (``avx512f``),
  and the number of cores the process may use;
- ``threads``: torch's thread count; ``torch``: its version; ``date``: the ISO date (UTC).

The meta is taken when the run starts (:func:`run_meta`), when the code was imported:
a commit made while a long benchmark runs is not the code it measured.

This module imports neither torch nor skssl at import time, so that readers of the
files (``fashion_mnist.py --markdown``, ``plot_results.py``) start fast.
"""

import json
import os
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"


def cpu_description():
    """``"Intel Xeon Processor (AVX-512), 2 cores"``: model, AVX-512 or not, usable cores
    (and ``", run as AVX2"`` where oneDNN is limited to an instruction set)."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key == "flags" and not flags:
                flags = set(value.split())
    except OSError:  # not Linux
        import platform

        model = platform.processor() or model
    model = re.sub(r"\s+", " ", re.sub(r"\((R|TM|tm)\)", "", model)).strip()
    avx512 = "AVX-512" if "avx512f" in flags else "no AVX-512"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model} ({avx512}), {cores} cores{run_as()}"


def run_as():
    """``", run as AVX2"`` where oneDNN is limited to an instruction set
    (``ONEDNN_MAX_CPU_ISA``, to run as on a CPU without AVX-512; set
    ``ATEN_CPU_CAPABILITY=avx2`` with it), else ``""``: for CPU and row names."""
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    return f", run as {isa}" if isa else ""


def git_commit():
    """Short hash of HEAD, ``-dirty`` if ``skssl/`` has uncommitted changes; ``None``
    outside a git checkout."""

    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "skssl")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if dirty else "")


def run_meta():
    """Where and when this process measures: call it at the start of a run, after
    setting torch's threads."""
    import torch

    return {
        "commit": git_commit(),
        "cpu": cpu_description(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "date": datetime.now(timezone.utc).date().isoformat(),
    }


def merge(path, rows, meta):
    """Stamp ``rows`` (name -> measurements) with ``meta`` and merge them into the JSON
    file ``path`` by name; the file is created if missing. Returns the stamped rows."""
    stamped = {name: {**row, "meta": dict(meta)} for name, row in rows.items()}
    path = Path(path)
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged.update(stamped)
    path.write_text(json.dumps(merged, indent=1) + "\n")
    return stamped


def load(paths):
    """The rows of several results files, merged by name in the order given (a row in a
    later file replaces one of the same name), baselines first: raw pixels, then the
    untrained encoders, then every other row in file order."""
    rows = {}
    for path in paths:
        rows.update(json.loads(Path(path).read_text()))
    return dict(sorted(rows.items(), key=lambda item: baseline_rank(item[0])))


# Where rows were measured: said once when every row shares it, else a column.
MACHINE = (("cpu", "CPU"), ("threads", "threads"), ("torch", "torch"))


def machine_value(meta, key):
    """``meta[key]`` as shown; torch without its build (``2.14.1+cu130`` is 2.14.1)."""
    value = (meta or {}).get(key)
    if key == "torch" and value is not None:
        value = str(value).split("+")[0]
    return value


def _values(results, key):
    return {machine_value(row.get("meta"), key) for row in results.values()}


def machine_columns(results):
    """The ``(key, title)`` of :data:`MACHINE` on which rows differ (or are unknown)."""
    return [(key, title) for key, title in MACHINE
            if len(_values(results, key)) > 1 or None in _values(results, key)]


def machine_line(results):
    """What every row shares, e.g. ``"Intel Xeon Processor (AVX-512), 2 cores, 2 threads,
    torch 2.14.1"``; ``None`` if nothing."""
    shared = []
    for key, title in MACHINE:
        values = _values(results, key)
        if len(values) == 1 and None not in values:
            value = values.pop()
            shared.append({"threads": f"{value} {title}", "torch": f"{title} {value}"}.get(
                key, str(value)))
    return ", ".join(shared) or None


def baseline_rank(name):
    """0 for raw pixels, 1 for an untrained encoder, 2 for a method."""
    if name == "raw pixels":
        return 0
    return 1 if name.startswith("random-init") else 2


def is_baseline(name):
    return baseline_rank(name) < 2
