"""skssl: self-supervised learning on images as scikit-learn transformers."""

from .base import BasePretrainer
from .pretext.context import ContextPretrainer
from .pretext.jigsaw import JigsawPretrainer
from .pretext.rotation import RotationPretrainer

__version__ = "0.1.0.dev0"

__all__ = [
    "BasePretrainer",
    "ContextPretrainer",
    "JigsawPretrainer",
    "RotationPretrainer",
    "__version__",
]
