"""Every pretrainer computes what it computed before the step-contract refactoring.

``fingerprints.json`` was written by ``python tests/fingerprint.py`` on the commit
before the training loop was split out of ``base.py``; on that machine the refactored
code reproduced it bit for bit. The tolerance here only absorbs float rounding across
CPUs (another instruction set may round a few operations differently; on a Xeon of
2026-12-02 the intruder's score moved by 1.2e-4 relative): a change of random stream,
of initialisation or of what a method computes moves these numbers by far more.
The intruder's numbers were rewritten on purpose when its head became the
``TileHead`` on the feature map (2026-12-02), and when it started turning its images
(``turn_images``, 2026-12-03). ``"rotation, one turn"`` (rotation's default batch since
2026-12-03) was added then; ``"rotation"`` pins the paper's batch (``all_rotations=True``).
Both rotation entries were rewritten on purpose when rotation's head became the
``PyramidHead`` on the feature map (2026-12-03).
"""

import json
from pathlib import Path

import numpy as np
import pytest
from fingerprint import ESTIMATORS, fingerprint

PINNED = json.loads((Path(__file__).parent / "fingerprints.json").read_text())


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_same_training_as_before(name):
    got = fingerprint(name)
    for key, expected in PINNED[name].items():
        np.testing.assert_allclose(got[key], expected, rtol=1e-3, atol=1e-4, err_msg=key)
