"""skssl: self-supervised learning on images as scikit-learn transformers."""

__version__ = "0.1.0.dev0"
