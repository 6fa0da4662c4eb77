"""Every example script runs in its quick mode and writes its figure."""

import runpy
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("pandas")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# quickstart.py is README's first command, which CI runs as it is; it draws nothing.
SCRIPTS = sorted(
    path for path in EXAMPLES.glob("*.py")
    if not path.name.startswith("_") and path.name != "quickstart.py"
)
# Scripts that draw without a linear probe: pretext_tasks.py is the picture of every task.
NO_PROBE = {"pretext_tasks"}


def test_the_gallery_has_a_script_per_method():
    names = {path.stem for path in SCRIPTS}
    assert {"rotation", "jigsaw", "context", "intruder", "simclr", "mae_reconstructions",
            "bow_prediction", "visual_bow", "pipeline_gridsearch", "frozen_estimator",
            "set_output_pandas", "invent_a_pretext_task", "pretext_tasks"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.stem)
def test_example_runs_in_quick_mode(script, tmp_path, monkeypatch, capsys):
    import matplotlib

    matplotlib.use("Agg")
    out = tmp_path / "figure.png"
    monkeypatch.setenv("SKSSL_EXAMPLES_QUICK", "1")
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setattr(sys, "argv", [str(script), "--out", str(out)])
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        matplotlib.pyplot.close("all")
    printed = capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"saved {out}" in printed
    if script.stem not in NO_PROBE:
        assert "raw pixels" in printed  # every other example compares with raw pixels
