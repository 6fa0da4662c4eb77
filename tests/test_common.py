"""scikit-learn's common estimator checks on every public pretrainer."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skssl import RotationPretrainer, SimCLRPretrainer

# Tiny, fast settings: the checks use small 2D float arrays with few columns, read
# here as 1-pixel-high images of any width (image_shape=(1, -1)).
FAST = dict(
    encoder_kwargs={"channels": (4,)},
    image_shape=(1, -1),
    max_epochs=2,
    batch_size=16,
    device="cpu",
    random_state=0,
)

ESTIMATORS = [RotationPretrainer(**FAST), SimCLRPretrainer(**FAST)]

EXPECTED_FAILED_CHECKS = {}


# The checks' data is not on an image scale; SimCLR's warning about it is expected.
@pytest.mark.filterwarnings("ignore:SimCLRPretrainer augments images:UserWarning")
@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
