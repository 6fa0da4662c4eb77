"""Encoders: the networks whose features a pretrainer learns.

Every encoder is an :class:`torch.nn.Module` mapping a batch ``(B, C, H, W)`` to
features ``(B, num_features)`` and exposing the integer attribute ``num_features``.
Encoders are made by name through :func:`make_encoder`; :func:`register_encoder`
adds a name; :func:`build_encoder` builds what a pretrainer's ``encoder`` parameter
says (a name, a module or a factory) and checks it on a dry batch. The built-in
encoders also give their features before global pooling, one vector per location
(``feature_map``; :func:`feature_map` says clearly when an encoder lacks it).
"""

from ._build import build_encoder, check_encoder_takes, dry_run_features
from ._maps import feature_map
from ._registry import available_encoders, make_encoder, register_encoder
from .cnn import SmallCNN
from .resnet import ResNet18Encoder
from .vit import TransformerBlock, VisionTransformer

__all__ = [
    "ResNet18Encoder",
    "SmallCNN",
    "TransformerBlock",
    "VisionTransformer",
    "available_encoders",
    "build_encoder",
    "check_encoder_takes",
    "dry_run_features",
    "feature_map",
    "make_encoder",
    "register_encoder",
]
