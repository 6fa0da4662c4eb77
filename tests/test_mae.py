"""MAEPretrainer, its masking and patch operations, its decoder and its loss."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skssl import MAEPretrainer
from skssl.datasets import load_fashion_mnist
from skssl.encoders import VisionTransformer
from skssl.heads import MAEDecoder
from skssl.losses import masked_patch_mse
from skssl.ops import patchify, random_masking, unpatchify

# A ViT small enough for tests: 28x28 images in 7x7 = 49 patches of 4x4 pixels.
VIT = {"patch_size": 4, "embed_dim": 32, "depth": 1, "num_heads": 2}
TINY = dict(encoder_kwargs=VIT, decoder_dim=32, decoder_depth=1, max_epochs=1, batch_size=50,
            device="cpu", random_state=0)


@pytest.fixture(scope="module")
def fashion():
    try:
        return load_fashion_mnist(subset="test", return_X_y=True)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def fitted(fashion):
    return MAEPretrainer(**TINY).fit(fashion[0][:100])


# ---------------------------------------------------------------- ops
@pytest.mark.parametrize("n_patches, mask_ratio", [(49, 0.75), (64, 0.75), (10, 0.5), (7, 0.9)])
def test_random_masking_hides_the_same_count_in_every_image(n_patches, mask_ratio):
    keep, mask = random_masking(20, n_patches, mask_ratio,
                                generator=torch.Generator().manual_seed(0))
    n_hidden = round(mask_ratio * n_patches)
    assert mask.shape == (20, n_patches) and mask.dtype == torch.bool
    assert mask.sum(dim=1).tolist() == [n_hidden] * 20
    assert keep.shape == (20, n_patches - n_hidden) and keep.dtype == torch.int64
    assert not mask.gather(1, keep).any()  # the kept patches are exactly the visible ones
    assert len({tuple(row) for row in keep.tolist()}) > 1  # each image draws its own


def test_random_masking_is_seeded():
    def draw(seed):
        return random_masking(8, 49, 0.75, generator=torch.Generator().manual_seed(seed))

    (keep, mask), (keep_again, mask_again) = draw(0), draw(0)
    assert torch.equal(keep, keep_again) and torch.equal(mask, mask_again)
    assert not torch.equal(mask, draw(1)[1])


def test_random_masking_keeps_a_visible_patch():
    keep, mask = random_masking(3, 4, 1.0, generator=torch.Generator().manual_seed(0))
    assert keep.shape == (3, 1) and mask.sum(dim=1).tolist() == [3, 3, 3]


def test_random_masking_checks_its_arguments():
    with pytest.raises(ValueError, match="mask_ratio"):
        random_masking(2, 4, 1.5, generator=torch.Generator())
    with pytest.raises(TypeError, match="generator"):
        random_masking(2, 4, 0.5, generator=0)


@pytest.mark.parametrize("shape, p", [((2, 1, 28, 28), 4), ((3, 3, 8, 12), 4), ((1, 2, 5, 5), 1)])
def test_unpatchify_inverts_patchify(shape, p):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    patches = patchify(x, p)
    assert patches.shape == (shape[0], (shape[2] // p) * (shape[3] // p), p * p * shape[1])
    assert torch.equal(unpatchify(patches, p, shape[2:], shape[1]), x)


def test_vit_patchify_is_the_op():
    vit = VisionTransformer(3, (8, 12), patch_size=4, embed_dim=8, depth=1, num_heads=2)
    x = torch.randn(2, 3, 8, 12)
    assert torch.equal(vit.patchify(x), patchify(x, 4))
    assert torch.equal(vit.unpatchify(vit.patchify(x)), x)


def test_patchify_refuses_a_patch_size_that_does_not_divide():
    with pytest.raises(ValueError, match="patch_size=5 must divide the image size 28x28"):
        patchify(torch.zeros(1, 1, 28, 28), 5)
    with pytest.raises(ValueError, match="patches of shape"):
        unpatchify(torch.zeros(1, 49, 16), 4, (28, 28), 3)


# ---------------------------------------------------------------- loss and decoder
@pytest.mark.parametrize("norm_pix", [True, False])
def test_loss_ignores_the_visible_patches(norm_pix):
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(4, 49, 16, generator=g), torch.randn(4, 49, 16, generator=g)
    _, mask = random_masking(4, 49, 0.75, generator=g)
    loss = masked_patch_mse(pred, target, mask, norm_pix=norm_pix)
    moved = pred + 10 * (~mask).unsqueeze(-1)  # other predictions of the visible patches
    assert torch.equal(masked_patch_mse(moved, target, mask, norm_pix=norm_pix), loss)
    moved = pred + 10 * mask.unsqueeze(-1)
    assert masked_patch_mse(moved, target, mask, norm_pix=norm_pix) > loss + 1


def test_norm_pix_targets_are_normalised_per_patch():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(2, 9, 16, generator=g)
    mask = torch.ones(2, 9, dtype=torch.bool)
    scale, shift = torch.rand(2, 9, 1, generator=g) + 0.5, torch.randn(2, 9, 1, generator=g)
    pred = torch.randn(2, 9, 16, generator=g)
    loss = masked_patch_mse(pred, target, mask)
    assert torch.allclose(masked_patch_mse(pred, target * scale + shift, mask), loss, atol=1e-5)
    # a one-pixel or constant patch is a target of 0, not NaN
    assert float(masked_patch_mse(torch.zeros(1, 2, 1), torch.ones(1, 2, 1), mask[:1, :2])) == 0


def test_decoder_puts_tokens_in_their_places():
    torch.manual_seed(0)
    decoder = MAEDecoder((4, 4), patch_dim=12, encoder_dim=8, decoder_dim=16, depth=1,
                         num_heads=2)
    tokens, keep = torch.randn(2, 5, 8), torch.tensor([[0, 3, 5, 9, 15], [1, 2, 4, 8, 10]])
    out = decoder(tokens, keep)
    assert out.shape == (2, 16, 12)
    order = torch.tensor([4, 2, 0, 1, 3])  # the same tokens, listed in another order
    assert torch.allclose(decoder(tokens[:, order], keep[:, order]), out, atol=1e-5)
    with pytest.raises(ValueError, match="decoder_dim"):
        MAEDecoder((4, 4), 12, 8, decoder_dim=18)


# ---------------------------------------------------------------- estimator
def test_reconstruction_loss_falls_on_fashion_mnist(fashion):
    X = fashion[0][:300]
    mae = MAEPretrainer(encoder_kwargs={"patch_size": 4, "embed_dim": 64, "depth": 2,
                                        "num_heads": 4},
                        decoder_dim=64, decoder_depth=1, max_epochs=3, batch_size=50,
                        device="cpu", random_state=0).fit(X)
    assert mae.loss_curve_[-1] < 0.75 * mae.loss_curve_[0]
    assert mae.history_[-1]["pretext_accuracy"] is None
    assert mae.transform(X[:10]).shape == (10, 64)
    assert mae.score(X[:100]) == mae.score(X[:100]) < 0  # seeded masks


def test_transform_encodes_all_patches_and_averages_them(fitted, fashion):
    X = fashion[0][:6]
    x = (torch.from_numpy(X).float()[:, None] / 255 - float(fitted.channel_mean_[0]))
    x = x / float(fitted.channel_std_[0])
    with torch.no_grad():
        expected = fitted.encoder_.forward_tokens(x).mean(dim=1).numpy()
    np.testing.assert_allclose(fitted.transform(X), expected, atol=1e-5)


def test_cls_token_pooling(fashion):
    vit = {**VIT, "pool": "cls"}
    mae = MAEPretrainer(**{**TINY, "encoder_kwargs": vit}).fit(fashion[0][:60])
    assert mae.transform(fashion[0][:4]).shape == (4, 32)


@pytest.mark.parametrize("encoder", ["cnn", "resnet18"])
def test_encoders_without_patch_tokens_are_refused(encoder):
    X = np.random.RandomState(0).rand(4, 16, 16).astype(np.float32)
    mae = MAEPretrainer(encoder=encoder, max_epochs=1)
    with pytest.raises(ValueError, match="needs patch tokens.*'vit_tiny' or 'vit_small'"):
        mae.fit(X)


def test_a_patch_size_that_does_not_divide_the_image_is_refused():
    X = np.random.RandomState(0).rand(4, 28, 28).astype(np.float32)
    with pytest.raises(ValueError, match="not divisible by patch_size=5"):
        MAEPretrainer(**{**TINY, "encoder_kwargs": {**VIT, "patch_size": 5}}).fit(X)


@pytest.mark.parametrize("size, patch", [
    ((28, 28), 7), ((32, 32), 8), ((224, 224), 16), ((96, 96), 16), ((28, 32), 4),
    ((8, 8), 2), ((3, 3), 1),
])
def test_mae_picks_coarse_patches_for_named_vits(size, patch):
    from skssl.pretext.mae import _mae_patch_size

    assert _mae_patch_size(size) == patch
    X = np.random.RandomState(0).rand(2, *size).astype(np.float32)
    small = {"embed_dim": 8, "depth": 1, "num_heads": 2}
    if min(size) >= 4:
        mae = MAEPretrainer(**{**TINY, "encoder_kwargs": small}, encoder="vit_tiny").fit(X)
        assert mae.encoder_.patch_size == patch
        assert mae.encoder_kwargs == small  # the parameter is not modified


def test_mae_keeps_a_given_patch_size():
    X = np.random.RandomState(0).rand(2, 28, 28).astype(np.float32)
    assert MAEPretrainer(**TINY).fit(X).encoder_.patch_size == 4
    vit = {**VIT, "patch_size": None}  # None: the ViT's own rule, 7 patches per side
    assert MAEPretrainer(**{**TINY, "encoder_kwargs": vit}).fit(X).encoder_.patch_size == 4


def test_too_few_patches_to_hide_one_are_refused():
    X = np.random.RandomState(0).rand(4, 4, 4).astype(np.float32)
    one_patch = {**VIT, "patch_size": 4}
    with pytest.raises(ValueError, match="hides none of the 1 patches"):
        MAEPretrainer(**{**TINY, "encoder_kwargs": one_patch}).fit(X)
    with pytest.raises(ValueError, match="mask_ratio=0.01 hides none of the 4 patches"):
        MAEPretrainer(**{**TINY, "encoder_kwargs": {**VIT, "patch_size": 2}},
                      mask_ratio=0.01).fit(X)


def test_reconstruct(fitted, fashion):
    X = fashion[0][:5]
    images = fitted.reconstruct(X)
    assert [a.shape for a in images] == [(5, 28, 28)] * 3
    np.testing.assert_array_equal(images[0], X)  # uint8 in, 0-255 out
    # in patches of 4x4: each is the original, or hidden at the channel mean
    original, masked, reconstruction = (patchify(torch.from_numpy(a[:, None]), 4)
                                        for a in images)
    visible = (masked == original).all(dim=-1)
    hidden = (masked == fitted.channel_mean_[0] * 255).all(dim=-1)
    assert (visible ^ hidden).all()
    assert hidden.sum(dim=1).tolist() == [round(0.75 * 49)] * 5
    assert torch.equal(reconstruction[visible], original[visible])
    assert not torch.equal(reconstruction[hidden], masked[hidden])
    # seeded
    np.testing.assert_array_equal(fitted.reconstruct(X)[1], images[1])
    assert not np.array_equal(fitted.reconstruct(X, random_state=1)[1], images[1])


def test_three_channel_images_and_flat_input():
    X = np.random.RandomState(0).rand(40, 8, 8, 3).astype(np.float32)
    vit = {"patch_size": 2, "embed_dim": 16, "depth": 1, "num_heads": 2}
    mae = MAEPretrainer(**{**TINY, "encoder_kwargs": vit, "decoder_dim": 16})
    assert mae.fit_transform(X).shape == (40, 16)
    original, masked, reconstruction = mae.reconstruct(X[:3])
    assert reconstruction.shape == (3, 8, 8, 3)
    np.testing.assert_allclose(original, X[:3])
    flat = mae.reconstruct(X[:3].reshape(3, -1))
    assert flat[2].shape == (3, 192)
    np.testing.assert_array_equal(flat[2].reshape(3, 8, 8, 3), reconstruction)


def test_pipeline_and_grid_search(fashion):
    X, y = fashion[0][:200].reshape(200, -1), fashion[1][:200]
    # a ridge classifier: as good a probe here as a logistic regression, 100x faster
    pipe = make_pipeline(MAEPretrainer(**TINY), StandardScaler(), RidgeClassifier())
    grid = {"maepretrainer__mask_ratio": [0.5, 0.75]}
    search = GridSearchCV(pipe, grid, cv=2).fit(X, y)
    assert set(search.best_params_) == {"maepretrainer__mask_ratio"}
    assert search.score(X, y) > 0.3  # 10 classes
