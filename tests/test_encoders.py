import copy
import pickle

import numpy as np
import pytest
import torch
from torchvision.models import resnet18 as torchvision_resnet18

from skssl.encoders import (
    ResNet18Encoder,
    VisionTransformer,
    available_encoders,
    make_encoder,
)
from skssl.encoders.vit import sincos_pos_embed_2d

ENCODERS = available_encoders()
# Fewer blocks where the default depth makes a test slow for what it checks.
SHALLOW = {"vit_tiny": {"depth": 2}, "vit_small": {"depth": 2}}


def small_vit(**kwargs):
    """A ViT small enough to build and run in milliseconds."""
    params = dict(
        in_channels=1, image_size=(8, 12), patch_size=4, embed_dim=16, depth=2, num_heads=2
    )
    return VisionTransformer(**{**params, **kwargs}).eval()


def test_all_builtin_encoders_registered():
    assert {"cnn", "resnet18", "vit_tiny", "vit_small"} <= set(ENCODERS)


@pytest.mark.parametrize("shape", [(2, 1, 28, 28), (2, 3, 32, 32)])
@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_output(name, shape):
    torch.manual_seed(0)
    enc = make_encoder(name, shape[1], shape[2:])
    assert isinstance(enc.num_features, int)
    x = torch.randn(shape)
    out = enc.eval()(x)
    assert out.shape == (2, enc.num_features)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()

    # Every parameter takes part in the features: none is trained for nothing.
    enc.train()(x).square().mean().backward()
    for pname, param in enc.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_copies_and_pickles(name):
    torch.manual_seed(0)
    enc = make_encoder(name, 1, (28, 28), **SHALLOW.get(name, {})).eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        expected = enc(x)
        for other in (copy.deepcopy(enc), pickle.loads(pickle.dumps(enc))):
            torch.testing.assert_close(other(x), expected, rtol=0, atol=0)


def test_unknown_encoder_lists_names():
    with pytest.raises(ValueError, match="Unknown encoder 'resnet50'") as info:
        make_encoder("resnet50", 3, (32, 32))
    for name in ("cnn", "resnet18", "vit_tiny", "vit_small"):
        assert name in str(info.value)


@pytest.mark.parametrize("name", ENCODERS)
def test_bad_kwarg_is_type_error(name):
    with pytest.raises(TypeError, match="not_a_kwarg"):
        make_encoder(name, 1, (28, 28), not_a_kwarg=1)


# ResNet-18


@pytest.mark.parametrize(
    "image_size, small",
    [((28, 28), True), ((32, 32), True), ((64, 200), True), ((65, 65), False), ((96, 96), False)],
)
def test_resnet_stem_follows_image_size(image_size, small):
    enc = make_encoder("resnet18", 3, image_size)
    assert enc.small_input is small
    assert enc.conv1.stride == ((1, 1) if small else (2, 2))
    assert enc.conv1.kernel_size == ((3, 3) if small else (7, 7))
    assert isinstance(enc.maxpool, torch.nn.Identity) is small


def test_resnet_large_input_and_overrides():
    enc = make_encoder("resnet18", 4, (96, 96)).eval()
    assert enc.conv1.in_channels == 4
    with torch.no_grad():
        assert enc(torch.randn(1, 4, 96, 96)).shape == (1, 512)
    assert make_encoder("resnet18", 3, (96, 96), small_input=True).conv1.stride == (1, 1)
    assert make_encoder("resnet18", 3, (32, 32), small_input=False).conv1.stride == (2, 2)
    with pytest.raises(TypeError, match="small_input"):
        ResNet18Encoder(3, small_input="auto")


@pytest.mark.parametrize("small_input", [True, False])
def test_resnet_is_torchvision_resnet18(small_input):
    # Same modules, hence same state_dict keys as torchvision's, bar the classifier.
    ours = ResNet18Encoder(3, small_input=small_input).state_dict()
    theirs = torchvision_resnet18(weights=None).state_dict()
    assert set(ours) == set(theirs) - {"fc.weight", "fc.bias"}
    changed = {k for k in ours if ours[k].shape != theirs[k].shape}
    assert changed == (set() if not small_input else {"conv1.weight"})


# Vision Transformer


@pytest.mark.parametrize(
    "image_size, patch_size",
    [
        ((28, 28), 4),
        ((32, 32), 4),
        ((64, 64), 8),
        ((96, 96), 8),
        ((224, 224), 16),
        ((32, 224), 4),
        ((30, 30), 2),
        ((27, 27), 1),
        ((5, 5), 1),
    ],
)
def test_vit_auto_patch_size(image_size, patch_size):
    vit = VisionTransformer(3, image_size, embed_dim=8, depth=1, num_heads=1)
    assert vit.patch_size == patch_size
    assert vit.grid_size == (image_size[0] // patch_size, image_size[1] // patch_size)
    assert vit.num_patches == vit.grid_size[0] * vit.grid_size[1]
    assert vit.pos_embed.shape == (1, vit.num_patches, 8)


def test_vit_registered_sizes():
    tiny = make_encoder("vit_tiny", 3, 32, depth=1)
    small = make_encoder("vit_small", 3, 32, depth=1)
    assert (tiny.embed_dim, tiny.blocks[0].num_heads, tiny.num_features) == (192, 3, 192)
    assert (small.embed_dim, small.blocks[0].num_heads, small.num_features) == (384, 6, 384)
    assert len(make_encoder("vit_tiny", 3, 32).blocks) == 12


def test_vit_patch_size_must_divide_image():
    with pytest.raises(ValueError, match=r"28x30 is not divisible by patch_size=4"):
        VisionTransformer(1, (28, 30), patch_size=4)
    with pytest.raises(ValueError, match=r"28x28 is not divisible by patch_size=8"):
        make_encoder("vit_tiny", 1, (28, 28), patch_size=8)


def test_vit_checks_options_and_input_size():
    with pytest.raises(ValueError, match="pos_embed"):
        small_vit(pos_embed="absolute")
    with pytest.raises(ValueError, match="pool"):
        small_vit(pool="max")
    with pytest.raises(ValueError, match="num_heads=3"):
        small_vit(num_heads=3)
    with pytest.raises(ValueError, match="embed_dim % 4"):
        small_vit(embed_dim=6, num_heads=1)
    with pytest.raises(ValueError, match="takes 8x12 images, got 12x8"):
        small_vit()(torch.zeros(1, 1, 12, 8))


def test_vit_pos_embed_kinds():
    assert "pos_embed" in dict(small_vit().named_buffers())
    assert "pos_embed" in dict(small_vit(pos_embed="learned").named_parameters())
    pe = sincos_pos_embed_2d(16, (2, 3))
    assert pe.shape == (6, 16)
    assert len(set(map(tuple, pe.tolist()))) == 6  # one code per position


def test_vit_patchify_layout():
    vit = small_vit(in_channels=3)  # 8x12 image, 4x4 patches: a 2x3 grid
    x = torch.randn(2, 3, 8, 12)
    patches = vit.patchify(x)
    assert patches.shape == (2, 6, 4 * 4 * 3)
    for i in range(6):
        row, col = divmod(i, 3)
        pixels = x[:, :, 4 * row : 4 * row + 4, 4 * col : 4 * col + 4]
        torch.testing.assert_close(patches[:, i], pixels.permute(0, 2, 3, 1).reshape(2, -1))
    assert torch.equal(vit.unpatchify(patches), x)


@pytest.mark.parametrize("pos_embed", ["sincos", "learned"])
def test_forward_tokens_with_all_patches_permuted(pos_embed):
    # Attention is permutation-equivariant and positions are added before the
    # selection, so encoding the patches in another order permutes the tokens.
    torch.manual_seed(0)
    vit = small_vit(pos_embed=pos_embed)
    x = torch.randn(3, 1, 8, 12)
    keep = torch.rand(3, vit.num_patches).argsort(dim=1)
    with torch.no_grad():
        tokens = vit.forward_tokens(x)
        selected = vit.forward_tokens(x, keep)
    expected = tokens.gather(1, keep[..., None].expand(-1, -1, vit.embed_dim))
    torch.testing.assert_close(selected, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(vit(x), tokens.mean(dim=1))


def test_forward_tokens_sees_only_kept_patches():
    torch.manual_seed(0)
    vit = small_vit()
    x = torch.randn(2, 1, 8, 12)
    order = torch.rand(2, vit.num_patches).argsort(dim=1)
    keep, dropped = order[:, :2], order[:, 2:]
    with torch.no_grad():
        tokens = vit.forward_tokens(x, keep)
        assert tokens.shape == (2, 2, vit.embed_dim)

        patches = vit.patchify(x)
        patches.scatter_(1, dropped[..., None].expand_as(patches[:, 2:]), 5.0)
        torch.testing.assert_close(vit.forward_tokens(vit.unpatchify(patches), keep), tokens)

        patches.scatter_(1, keep[..., None].expand_as(patches[:, :2]), 5.0)
        assert not torch.allclose(vit.forward_tokens(vit.unpatchify(patches), keep), tokens)


def test_forward_tokens_with_cls_token():
    torch.manual_seed(0)
    vit = small_vit(pool="cls")
    assert vit.num_prefix_tokens == 1
    x = torch.randn(2, 1, 8, 12)
    keep = torch.tensor([[0, 4, 5], [1, 2, 3]])
    with torch.no_grad():
        assert vit.forward_tokens(x, keep).shape == (2, 4, vit.embed_dim)
        tokens = vit.forward_tokens(x)
        assert tokens.shape == (2, 1 + vit.num_patches, vit.embed_dim)
        torch.testing.assert_close(vit(x), tokens[:, 0])


@pytest.mark.parametrize(
    "keep",
    [torch.tensor([0, 1]), torch.tensor([[0, 1]]), torch.tensor([[0, 1], [2, 3]]).int()],
)
def test_forward_tokens_rejects_bad_keep(keep):
    with pytest.raises(ValueError, match="keep must be a LongTensor"):
        small_vit().forward_tokens(torch.zeros(2, 1, 8, 12), keep)


# Every encoder inside a pretrainer

FAST_KWARGS = {
    "cnn": {"channels": (4, 8)},
    "resnet18": {},
    "vit_tiny": {"depth": 1, "embed_dim": 16, "num_heads": 2},
    "vit_small": {"depth": 1, "embed_dim": 16, "num_heads": 2},
}


@pytest.mark.parametrize("shape", [(12, 28, 28), (12, 32, 32, 3)])
@pytest.mark.parametrize("name", ENCODERS)
def test_every_encoder_trains_in_a_pretrainer(name, shape):
    from skssl import RotationPretrainer

    X = torch.rand(shape).numpy()
    est = RotationPretrainer(encoder=name, encoder_kwargs=FAST_KWARGS.get(name), max_epochs=1,
                             batch_size=6, device="cpu", random_state=0).fit(X)
    features = est.transform(X)
    assert features.shape == (12, 5 * est.encoder_.num_features)  # the pyramid readout
    assert np.isfinite(features).all()


def test_vit_size_error_through_a_pretrainer():
    from skssl import RotationPretrainer

    with pytest.raises(ValueError, match="not divisible by patch_size=4"):
        RotationPretrainer(encoder="vit_tiny", encoder_kwargs={"patch_size": 4, "depth": 1},
                           max_epochs=1, device="cpu").fit(np.zeros((4, 30, 30)))
