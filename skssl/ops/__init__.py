"""Tensor operations of the pretext tasks, for building new ones.

The operations on images take a float batch ``x`` of shape ``(B, C, H, W)`` on any
device, draw their randomness from an explicit :class:`torch.Generator` (random
tensors are made on ``generator.device`` and then moved to ``x.device``) and never
loop over images: patches are cut with one ``gather`` per batch.

- :mod:`~skssl.ops.patches`: :func:`normalize_patches`, and guards against colour
  shortcuts (Noroozi & Favaro 2016; Doersch et al. 2015): :func:`random_grayscale`,
  :func:`channel_jitter`, :func:`default_channel_shift`.
- :mod:`~skssl.ops.jigsaw`, jigsaw puzzles (Noroozi & Favaro, "Unsupervised
  Learning of Visual Representations by Solving Jigsaw Puzzles", ECCV 2016):
  :func:`hamming_permutations`, :func:`jigsaw_geometry`, :func:`extract_jigsaw_tiles`,
  :func:`shuffle_tiles`.
- :mod:`~skssl.ops.context`, context prediction (Doersch, Gupta & Efros,
  "Unsupervised Visual Representation Learning by Context Prediction", ICCV 2015):
  :func:`context_geometry`, :func:`extract_context_pairs`, :data:`CONTEXT_OFFSETS`.
- :mod:`~skssl.ops.rotation`, rotation prediction (Gidaris, Singh & Komodakis,
  "Unsupervised Representation Learning by Predicting Image Rotations", ICLR 2018):
  :func:`rotations`, :func:`turn_each`, :func:`center_crop_square`.
- :mod:`~skssl.ops.masking`, masked autoencoders (He et al., "Masked Autoencoders Are
  Scalable Vision Learners", CVPR 2022): :func:`patchify`, :func:`unpatchify`,
  :func:`random_masking`.
- :mod:`~skssl.ops.tiles`, skssl's own intruder task: :func:`corrupt_tiles`,
  :data:`TILE_CLASSES`.
- :mod:`~skssl.ops.bow`, bags of visual words (Coates, Lee & Ng 2011; Lazebnik et al.
  2006; Gidaris et al. 2020): :func:`extract_patches`, :func:`normalize_contrast`,
  :func:`zca_whitening`, :func:`squared_distances`, :func:`assign_words`,
  :func:`pyramid_regions`, :func:`pool_regions`.
"""

from .bow import (
    assign_words,
    extract_patches,
    normalize_contrast,
    pool_regions,
    pyramid_regions,
    squared_distances,
    zca_whitening,
)
from .context import CONTEXT_OFFSETS, ContextGeometry, context_geometry, extract_context_pairs
from .jigsaw import (
    JigsawGeometry,
    extract_jigsaw_tiles,
    hamming_permutations,
    jigsaw_geometry,
    shuffle_tiles,
)
from .masking import patchify, random_masking, unpatchify
from .patches import channel_jitter, default_channel_shift, normalize_patches, random_grayscale
from .rotation import center_crop_square, rotations, turn_each
from .tiles import INTACT, INTRUDER, MISPLACED, ROTATED, TILE_CLASSES, corrupt_tiles

__all__ = [
    "CONTEXT_OFFSETS",
    "ContextGeometry",
    "INTACT",
    "INTRUDER",
    "JigsawGeometry",
    "MISPLACED",
    "ROTATED",
    "TILE_CLASSES",
    "assign_words",
    "center_crop_square",
    "channel_jitter",
    "context_geometry",
    "corrupt_tiles",
    "default_channel_shift",
    "extract_context_pairs",
    "extract_jigsaw_tiles",
    "extract_patches",
    "hamming_permutations",
    "jigsaw_geometry",
    "normalize_contrast",
    "normalize_patches",
    "patchify",
    "pool_regions",
    "pyramid_regions",
    "random_grayscale",
    "random_masking",
    "rotations",
    "turn_each",
    "shuffle_tiles",
    "squared_distances",
    "unpatchify",
    "zca_whitening",
]
