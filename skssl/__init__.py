"""skssl: self-supervised learning on images as scikit-learn transformers."""

from .base import BasePretrainer
from .pretext.custom import PretextPretrainer
from .pretext.intruder import IntruderPretrainer
from .pretext.rotation import RotationPretrainer

__version__ = "0.1.0.dev0"

__all__ = [
    "BasePretrainer",
    "IntruderPretrainer",
    "PretextPretrainer",
    "RotationPretrainer",
    "__version__",
]
