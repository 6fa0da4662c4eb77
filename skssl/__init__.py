"""skssl: self-supervised learning on images as scikit-learn transformers."""

from .base import BasePretrainer
from .pretext.context import ContextPretrainer
from .pretext.custom import PretextPretrainer
from .pretext.intruder import IntruderPretrainer
from .pretext.jigsaw import JigsawPretrainer
from .pretext.mae import MAEPretrainer
from .pretext.rotation import RotationPretrainer
from .pretext.simclr import SimCLRPretrainer

__version__ = "0.1.0.dev0"

__all__ = [
    "BasePretrainer",
    "ContextPretrainer",
    "IntruderPretrainer",
    "JigsawPretrainer",
    "MAEPretrainer",
    "PretextPretrainer",
    "RotationPretrainer",
    "SimCLRPretrainer",
    "__version__",
]
