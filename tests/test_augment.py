import pickle

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from skssl.augment import (
    ColorJitter,
    Compose,
    GaussianBlur,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    simclr_augment,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _batch(n=8, channels=3, size=16, dtype=torch.float32, seed=0):
    return torch.rand(n, channels, size, size, generator=_gen(seed), dtype=dtype)


# Every augmentation with parameters that always change an image.
ALWAYS = {
    "crop": RandomResizedCrop(size=12),
    "flip": RandomHorizontalFlip(p=1.0),
    "jitter": ColorJitter(p=1.0),
    "grayscale": RandomGrayscale(p=1.0),
    "blur": GaussianBlur(3, p=1.0),
    "simclr": simclr_augment(12, 3, blur=True),
    "simclr_gray": simclr_augment(12, 1, blur=True),
}
RANDOM_PER_IMAGE = ["crop", "jitter", "blur", "simclr", "simclr_gray"]


def _channels(name):
    return 1 if name == "simclr_gray" else 3


@pytest.mark.parametrize("name", ALWAYS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_range(name, dtype):
    x = _batch(channels=_channels(name), dtype=dtype)
    y = ALWAYS[name](x, _gen())
    size = 12 if name in ("crop", "simclr", "simclr_gray") else 16
    assert y.shape == (8, _channels(name), size, size)
    assert y.dtype == dtype and y.device == x.device
    assert y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("name", ALWAYS)
def test_deterministic_for_a_seed(name):
    aug = ALWAYS[name]
    x = _batch(channels=_channels(name))
    assert torch.equal(aug(x, _gen(3)), aug(x, _gen(3)))
    if name in RANDOM_PER_IMAGE:
        assert not torch.equal(aug(x, _gen(3)), aug(x, _gen(4)))


def test_pickle_round_trip():
    aug = simclr_augment(12, 3, blur=True)
    x = _batch()
    assert torch.equal(pickle.loads(pickle.dumps(aug))(x, _gen(1)), aug(x, _gen(1)))


def test_global_rng_untouched():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    simclr_augment(12, 3, blur=True)(_batch(), _gen())
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name", RANDOM_PER_IMAGE)
def test_parameters_differ_across_images(name):
    x = _batch(n=1, channels=_channels(name)).expand(6, -1, -1, -1)
    y = ALWAYS[name](x, _gen())
    assert all(not torch.equal(y[0], y[i]) for i in range(1, 6))


@pytest.mark.parametrize(
    "aug", [RandomHorizontalFlip(), RandomGrayscale(p=0.5), ColorJitter(p=0.5), GaussianBlur(3)]
)
def test_probability_applies_per_image(aug):
    x = _batch(n=32, channels=3)
    y = aug(x, _gen())
    unchanged = sum(torch.equal(a, b) for a, b in zip(x, y, strict=True))
    assert 0 < unchanged < 32


@pytest.mark.parametrize(
    "aug", [RandomHorizontalFlip(p=0), RandomGrayscale(p=0), ColorJitter(p=0), GaussianBlur(3, p=0)]
)
def test_probability_zero_is_identity(aug):
    x = _batch()
    assert torch.equal(aug(x, _gen()), x)


def test_flip_mirrors():
    x = _batch(n=2)
    assert torch.equal(RandomHorizontalFlip(p=1.0)(x, _gen()), x.flip(-1))


def test_crop_boxes_follow_scale_and_ratio():
    crop = RandomResizedCrop(scale=(0.2, 0.6), ratio=(0.5, 2.0))
    x0, y0, w, h = crop.sample_boxes(2000, 20, 30, _gen(), "cpu")
    assert (x0 >= 0).all() and (y0 >= 0).all()
    assert (x0 + w <= 30 + 1e-4).all() and (y0 + h <= 20 + 1e-4).all()
    area = w * h / 600
    assert area.min() >= 0.2 - 1e-5 and area.max() <= 0.6 + 1e-5
    ratio = w / h
    assert ratio.min() >= 0.5 - 1e-5 and ratio.max() <= 2.0 + 1e-5
    # The log-ratio is uniform: about as many tall boxes as wide ones.
    assert 0.4 < (ratio > 1).float().mean() < 0.6


def test_crop_fallback_is_centred():
    # No box of a square image can have the full area and ratio 2: torchvision's
    # fallback is the centred full-width box of ratio 2.
    crop = RandomResizedCrop(scale=(1.0, 1.0), ratio=(2.0, 3.0))
    x0, y0, w, h = crop.sample_boxes(4, 16, 16, _gen(), "cpu")
    assert torch.allclose(w, torch.full((4,), 16.0)) and torch.allclose(h, torch.full((4,), 8.0))
    assert torch.allclose(x0, torch.zeros(4)) and torch.allclose(y0, torch.full((4,), 4.0))


def test_crop_full_box_is_identity():
    x = _batch()
    y = RandomResizedCrop(scale=(1.0, 1.0), ratio=(1.0, 1.0))(x, _gen())
    assert torch.allclose(y, x, atol=1e-5)


def test_crop_matches_torchvision_resized_crop():
    x = _batch(n=2, size=20)
    crop = RandomResizedCrop(size=(12, 10))
    boxes = (
        torch.tensor([3.0, 7.0]),
        torch.tensor([2.0, 5.0]),
        torch.tensor([15.0, 12.0]),
        torch.tensor([9.0, 14.0]),
    )
    crop.sample_boxes = lambda *args: boxes
    ours = crop(x, _gen())
    ref = torch.stack(
        [
            TF.resized_crop(
                x[i],
                int(boxes[1][i]),
                int(boxes[0][i]),
                int(boxes[3][i]),
                int(boxes[2][i]),
                [12, 10],
                antialias=False,
            )
            for i in range(2)
        ]
    )
    # Border samples differ: the box is cut from the whole image, so ours reads the
    # pixels just outside the box where torchvision repeats the box's edge.
    assert torch.allclose(ours[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, reference",
    [
        (dict(brightness=(1.3, 1.3)), lambda x: TF.adjust_brightness(x, 1.3)),
        (dict(contrast=(0.5, 0.5)), lambda x: TF.adjust_contrast(x, 0.5)),
        (dict(saturation=(1.7, 1.7)), lambda x: TF.adjust_saturation(x, 1.7)),
        (dict(hue=(0.3, 0.3)), lambda x: TF.adjust_hue(x, 0.3)),
        (dict(hue=(-0.45, -0.45)), lambda x: TF.adjust_hue(x, -0.45)),
    ],
)
def test_jitter_matches_torchvision(kwargs, reference):
    x = _batch(n=4)
    x[0, :, :4] = x[0, :1, :4]  # gray pixels
    x[1, 1, 4:8] = x[1, 0, 4:8]  # ties between channels
    params = dict(brightness=0, contrast=0, saturation=0, hue=0, p=1.0) | kwargs
    ours = ColorJitter(**params)(x, _gen())
    assert torch.allclose(ours, torch.stack([reference(xi) for xi in x]), atol=1e-5)


def test_jitter_on_gray_changes_brightness_and_contrast_only():
    x = _batch(channels=1)
    assert torch.equal(ColorJitter(0, 0, 0.4, 0.1, p=1.0)(x, _gen()), x)
    y = ColorJitter(brightness=(1.3, 1.3), contrast=0, saturation=0.4, hue=0.1, p=1.0)(x, _gen())
    assert torch.allclose(y, (1.3 * x).clamp(0, 1))


def test_grayscale_uses_luma_and_leaves_gray_input():
    x = _batch()
    y = RandomGrayscale(p=1.0)(x, _gen())
    assert torch.allclose(y, TF.rgb_to_grayscale(x, num_output_channels=3), atol=1e-6)
    gray = _batch(channels=1)
    assert torch.equal(RandomGrayscale(p=1.0)(gray, _gen()), gray)


def test_blur_matches_torchvision():
    x = _batch()
    ours = GaussianBlur(5, sigma=1.3, p=1.0)(x, _gen())
    assert torch.allclose(ours, TF.gaussian_blur(x, [5, 5], [1.3, 1.3]), atol=1e-5)


def test_compose_applies_in_order():
    x = _batch()
    aug = Compose([RandomResizedCrop(size=10), RandomGrayscale(p=1.0)])
    g = _gen(5)
    expected = RandomGrayscale(p=1.0)(RandomResizedCrop(size=10)(x, g), g)
    assert torch.equal(aug(x, _gen(5)), expected)
    assert "RandomGrayscale(p=1.0)" in repr(aug)


def test_simclr_recipe():
    names = [type(t).__name__ for t in simclr_augment(32, 3).transforms]
    assert names == ["RandomResizedCrop", "RandomHorizontalFlip", "ColorJitter", "RandomGrayscale"]
    gray = simclr_augment(28, 1, jitter_strength=1.0, blur=True).transforms
    assert [type(t).__name__ for t in gray][-1] == "GaussianBlur"
    jitter = gray[2]
    assert (jitter.brightness, jitter.contrast) == (0.8, 0.8)
    assert jitter.saturation is None and jitter.hue is None


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomResizedCrop(size=0),
        lambda: RandomResizedCrop(size=(4, 4, 4)),
        lambda: RandomResizedCrop(scale=(0.0, 1.0)),
        lambda: RandomResizedCrop(scale=(0.5, 1.5)),
        lambda: RandomResizedCrop(ratio=(2.0, 1.0)),
        lambda: RandomHorizontalFlip(p=1.5),
        lambda: ColorJitter(brightness=-0.1),
        lambda: ColorJitter(hue=0.6),
        lambda: ColorJitter(contrast=(1.0,)),
        lambda: RandomGrayscale(p="a"),
        lambda: GaussianBlur(4),
        lambda: GaussianBlur(3, sigma=(0.0, 1.0)),
        lambda: Compose([1]),
        lambda: simclr_augment(None, 3),
        lambda: simclr_augment(32, 2),
        lambda: simclr_augment(32, 3, blur=1),
        lambda: simclr_augment(32, 3, jitter_strength=-1),
    ],
)
def test_invalid_arguments(make):
    with pytest.raises(ValueError):
        make()


def test_invalid_inputs():
    with pytest.raises(ValueError, match="1 or 3 channels"):
        ColorJitter()(_batch(channels=4), _gen())
    with pytest.raises(ValueError, match="floating tensor"):
        RandomHorizontalFlip()(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), _gen())
    with pytest.raises(ValueError, match="larger than"):
        GaussianBlur(9)(_batch(size=4), _gen())
    with pytest.raises(TypeError, match="torch.Generator"):
        RandomHorizontalFlip()(_batch(), 0)
