"""skssl: self-supervised learning on images as scikit-learn transformers."""

from .base import BasePretrainer
from .persistence import load, save
from .pretext.bow import BoWPretrainer
from .pretext.context import ContextPretrainer
from .pretext.custom import PretextPretrainer
from .pretext.intruder import IntruderPretrainer
from .pretext.jigsaw import JigsawPretrainer
from .pretext.mae import MAEPretrainer
from .pretext.rotation import RotationPretrainer
from .pretext.simclr import SimCLRPretrainer
from .visual_bow import VisualBoW

__version__ = "0.1.0.dev0"

__all__ = [
    "BasePretrainer",
    "BoWPretrainer",
    "ContextPretrainer",
    "IntruderPretrainer",
    "JigsawPretrainer",
    "MAEPretrainer",
    "PretextPretrainer",
    "RotationPretrainer",
    "SimCLRPretrainer",
    "VisualBoW",
    "__version__",
    "load",
    "save",
]
