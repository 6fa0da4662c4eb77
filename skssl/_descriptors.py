"""Dense descriptors from a pretrainer or an encoder, and vocabularies learnt from them.

Shared by :class:`skssl.VisualBoW` and :class:`skssl.BoWPretrainer`.
"""

import copy

import numpy as np
import torch
from sklearn.base import clone
from sklearn.cluster import MiniBatchKMeans
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .base import BasePretrainer
from .device import to_memory_format
from .encoders import feature_map

# Descriptors drawn from each sampled image: more images, each costing a descriptor
# pass, give a more varied sample; a few locations per image already do.
_PER_IMAGE = 8


def fitted_descriptor(source, X, owner):
    """A fitted copy of a pretrainer or module ``source`` that gives feature maps.

    A module is deep-copied; a pretrainer wrapped in ``FrozenEstimator`` is copied as
    fitted; any other pretrainer is cloned and fitted on ``X`` first (``clone``, as in
    GridSearchCV, unfits an estimator parameter, so only a frozen one stays fitted).
    """
    if isinstance(source, nn.Module):
        return copy.deepcopy(source).eval()
    frozen = isinstance(source, FrozenEstimator)
    estimator = source.estimator if frozen else source
    if not isinstance(estimator, BasePretrainer):
        raise ValueError(
            f"{owner} takes a skssl pretrainer (fitted ones wrapped in "
            f"sklearn.frozen.FrozenEstimator) or an encoder module, got "
            f"{type(estimator).__name__}."
        )
    if frozen:
        check_is_fitted(estimator)
        return copy.deepcopy(estimator)
    return clone(estimator).fit(X)


def descriptor_maps(source, x):
    """Feature maps ``(B, D, h, w)`` of a batch ``x`` on the [0, 1] scale, no gradient.

    A pretrainer sees ``x`` normalised and prepared as in its training; a module sees
    ``x`` as it is.
    """
    if isinstance(source, nn.Module):
        return feature_map(source.to(x.device), x)
    encoder = source.encoder_.to(x.device).eval()
    x = source._prepare(source._normalize(x))
    return feature_map(encoder, to_memory_format(x, source.channels_last))


def sample_descriptors(describe, data, max_descriptors, random_state, batch_size):
    """A seeded sample ``(N, D)`` of at most ``max_descriptors`` descriptors of ``data``.

    ``describe(x)`` maps a batch of images on the [0, 1] scale to descriptors
    ``(B, L, D)``. Up to ``_PER_IMAGE`` random locations are drawn from each image of
    a random subset, more when there are too few images.
    """
    n = data.n_samples
    n_locations = describe(data.batch(slice(0, 1), "cpu")).shape[1]
    per_image = min(n_locations, max(_PER_IMAGE, -(-max_descriptors // n)))
    images = np.sort(random_state.permutation(n)[: -(-max_descriptors // per_image)])
    parts = []
    for start in range(0, len(images), batch_size):
        descriptors = describe(data.batch(images[start : start + batch_size], "cpu"))
        order = random_state.random_sample(descriptors.shape[:2]).argsort(axis=1)
        index = torch.from_numpy(order[:, :per_image, None])
        parts.append(descriptors.gather(1, index.expand(-1, -1, descriptors.shape[2])))
    return torch.cat(parts).flatten(0, 1)[:max_descriptors].float()


def learn_vocabulary(descriptors, n_words, random_state, owner):
    """Words ``(n_words, D)``, float32: MiniBatchKMeans centres of ``(N, D)`` descriptors."""
    if len(descriptors) < n_words:
        raise ValueError(
            f"{owner} found {len(descriptors)} descriptors for n_words={n_words}: the "
            "images are too few or too small for that many words; lower n_words."
        )
    kmeans = MiniBatchKMeans(
        n_words, batch_size=max(2048, 4 * n_words), n_init=1,
        random_state=random_state.randint(2**31 - 1),
    )
    return kmeans.fit(descriptors.numpy()).cluster_centers_.astype(np.float32)
