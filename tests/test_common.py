"""scikit-learn's common estimator checks on every public pretrainer."""

import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from skssl import IntruderPretrainer, PretextPretrainer, RotationPretrainer


def mirror_task(x, generator):
    """Was the image mirrored left-right? Any image size, even 1 x d."""
    inputs = torch.cat([x, x.flip(-1)])
    return inputs, torch.arange(2, device=x.device).repeat_interleave(len(x))


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

ESTIMATORS = [
    RotationPretrainer(**FAST),
    PretextPretrainer(mirror_task, n_outputs=2, **FAST),
    IntruderPretrainer(**FAST),
]

EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
