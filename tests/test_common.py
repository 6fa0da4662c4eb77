"""scikit-learn's common estimator checks on every public pretrainer."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skssl import ContextPretrainer, JigsawPretrainer, RotationPretrainer

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
    JigsawPretrainer(n_permutations=10, **FAST),
    ContextPretrainer(**FAST),
]

EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
