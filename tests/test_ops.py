"""The tensor operations of skssl.ops: patches, jigsaw, context and rotation."""

import math

import numpy as np
import pytest
import torch

from skssl.ops import (
    CONTEXT_OFFSETS,
    ContextGeometry,
    JigsawGeometry,
    center_crop_square,
    channel_jitter,
    context_geometry,
    default_channel_shift,
    extract_context_pairs,
    extract_jigsaw_tiles,
    hamming_permutations,
    jigsaw_geometry,
    normalize_patches,
    random_grayscale,
    rotations,
    shuffle_tiles,
    turn_each,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _encoded(batch, channels, height, width):
    """Images whose pixel value is ``channel * H * W + row * W + column``."""
    pixels = torch.arange(channels * height * width, dtype=torch.float32)
    return pixels.reshape(1, channels, height, width).repeat(batch, 1, 1, 1)


def _decode(patches, height, width):
    """Top-left ``(row, column)`` of each encoded patch, checking it is an exact block."""
    corner = patches[..., 0, 0, 0].long()
    rows, cols = corner // width, corner % width
    size = patches.shape[-1]
    steps = torch.arange(size)
    channel = torch.arange(patches.shape[-3])[:, None, None] * height * width
    expected = (
        channel
        + (rows[..., None, None, None] + steps[:, None]) * width
        + cols[..., None, None, None]
        + steps
    )
    assert torch.equal(patches, expected.float())
    return rows, cols


def _min_distance(perms):
    dist = (perms[:, None] != perms[None]).sum(-1)
    return dist[~np.eye(len(perms), dtype=bool)].min()


@pytest.fixture(scope="module")
def perms100():
    return hamming_permutations(100, random_state=0)


def test_hamming_permutations_are_distinct_valid_and_far_apart(perms100):
    assert perms100.shape == (100, 9) and perms100.dtype == np.int64
    assert (np.sort(perms100, axis=1) == np.arange(9)).all()
    assert len(np.unique(perms100, axis=0)) == 100
    # The greedy max-min selection reaches 6 for every seed tried; the paper's
    # average-distance selection only guarantees about 3.
    assert _min_distance(perms100) >= 5


def test_hamming_permutations_is_seeded(perms100):
    np.testing.assert_array_equal(hamming_permutations(100, random_state=0), perms100)
    other = hamming_permutations(100, random_state=1)
    assert not np.array_equal(other, perms100)


def test_hamming_permutations_small_sets():
    every = hamming_permutations(24, n_tiles=4, random_state=0)
    assert len(np.unique(every, axis=0)) == math.factorial(4)
    assert _min_distance(hamming_permutations(4, n_tiles=4, random_state=0)) == 4
    assert hamming_permutations(2, n_tiles=2).tolist() in ([[0, 1], [1, 0]], [[1, 0], [0, 1]])


@pytest.mark.parametrize(
    "n_permutations, n_tiles, match",
    [(1, 9, "n_permutations must be in"), (1001, 9, "n_permutations must be in"),
     (25, 4, "exceeds the 24 permutations"), (10, 10, "n_tiles must be in"),
     (10, 1, "n_tiles must be in")],
)
def test_hamming_permutations_rejects_bad_sizes(n_permutations, n_tiles, match):
    with pytest.raises(ValueError, match=match):
        hamming_permutations(n_permutations, n_tiles=n_tiles)


def test_jigsaw_geometry_defaults():
    assert jigsaw_geometry(28) == JigsawGeometry(grid=3, cell_size=9, tile_size=7)
    assert jigsaw_geometry(28).max_jitter == 2
    assert jigsaw_geometry(225) == (3, 75, 64)  # the paper's layout
    assert jigsaw_geometry((40, 30), grid=2) == (2, 15, 12)
    assert jigsaw_geometry(12) == (3, 4, 3)
    with pytest.raises(ValueError, match="at least 12x12 pixels"):
        jigsaw_geometry((11, 28))


def test_jigsaw_tiles_come_from_their_cells():
    geometry = jigsaw_geometry(27)
    x = _encoded(16, 2, 27, 27)
    tiles = extract_jigsaw_tiles(x, **geometry._asdict(), generator=_gen(), normalize=False)
    assert tiles.shape == (16, 9, 2, 7, 7)
    rows, cols = _decode(tiles, 27, 27)
    cells = torch.arange(9)
    # The image is exactly the crop: every tile lies inside its own cell.
    assert (rows // 9 == cells // 3).all() and ((rows + 6) // 9 == cells // 3).all()
    assert (cols // 9 == cells % 3).all() and ((cols + 6) // 9 == cells % 3).all()
    # Offsets are drawn per image and per cell.
    assert len(torch.unique(rows % 9)) == 3 and len(torch.unique(cols % 9)) == 3


def test_jigsaw_crop_moves_per_image_and_jitter_stays_in_cell():
    x = _encoded(64, 1, 33, 31)
    tiles = extract_jigsaw_tiles(x, 3, 9, 7, generator=_gen(), normalize=False)
    rows, cols = _decode(tiles, 33, 31)
    cells = torch.arange(9)
    # Each tile's offset from its cell corner = crop offset + jitter in [0, 2].
    row_off = rows - (cells // 3) * 9
    col_off = cols - (cells % 3) * 9
    for off, slack in ((row_off, 33 - 27), (col_off, 31 - 27)):
        low, high = off.min(dim=1).values, off.max(dim=1).values
        assert (high - low <= 2).all()
        assert (low >= 0).all() and (high <= slack + 2).all()
        assert len(torch.unique(low)) > 2


def test_jigsaw_tiles_are_normalized_and_seeded():
    x = torch.randn(4, 3, 28, 28)
    geometry = jigsaw_geometry(28)._asdict()
    tiles = extract_jigsaw_tiles(x, **geometry, generator=_gen(5))
    mean = tiles.mean(dim=(-2, -1))
    std = tiles.std(dim=(-2, -1), unbiased=False)
    torch.testing.assert_close(mean, torch.zeros_like(mean), atol=1e-5, rtol=0)
    torch.testing.assert_close(std, torch.ones_like(std), atol=1e-4, rtol=0)
    raw = extract_jigsaw_tiles(x, **geometry, generator=_gen(5), normalize=False)
    torch.testing.assert_close(tiles, normalize_patches(raw))
    assert torch.equal(tiles, extract_jigsaw_tiles(x, **geometry, generator=_gen(5)))
    assert not torch.equal(tiles, extract_jigsaw_tiles(x, **geometry, generator=_gen(6)))


def test_jigsaw_tiles_reject_small_images():
    with pytest.raises(ValueError, match="at least 27x27 pixels"):
        extract_jigsaw_tiles(torch.zeros(2, 1, 26, 40), 3, 9, 7, generator=_gen())
    with pytest.raises(ValueError, match="tile_size must be in"):
        extract_jigsaw_tiles(torch.zeros(2, 1, 28, 28), 3, 9, 10, generator=_gen())
    with pytest.raises(TypeError, match="torch.Generator"):
        extract_jigsaw_tiles(torch.zeros(2, 1, 28, 28), 3, 9, 7, generator=0)


def test_shuffle_tiles_applies_the_target_permutation(perms100):
    tiles = extract_jigsaw_tiles(_encoded(300, 1, 28, 28), 3, 9, 7, generator=_gen(),
                                 normalize=False)
    shuffled, target = shuffle_tiles(tiles, perms100, generator=_gen(1))
    assert shuffled.shape == tiles.shape and target.dtype == torch.int64
    assert target.min() >= 0 and target.max() < 100 and len(torch.unique(target)) > 90
    for b in range(len(tiles)):
        order = torch.as_tensor(perms100[target[b]])
        assert torch.equal(shuffled[b], tiles[b, order])
    with pytest.raises(ValueError, match=r"shape \(n_permutations, 9\)"):
        shuffle_tiles(tiles, perms100[:, :4], generator=_gen())


def test_random_grayscale():
    x = torch.randn(2000, 3, 2, 2)
    assert torch.equal(random_grayscale(x, 0.0, generator=_gen()), x)
    grey = random_grayscale(x, 1.0, generator=_gen())
    torch.testing.assert_close(grey, x.mean(dim=1, keepdim=True).expand_as(x))
    half = random_grayscale(x, 0.3, generator=_gen())
    turned = (half != x).flatten(1).any(dim=1).float().mean().item()
    assert 0.25 < turned < 0.35
    mono = x[:, :1]
    assert random_grayscale(mono, 1.0, generator=_gen()) is mono
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]"):
        random_grayscale(x, 1.5, generator=_gen())


def test_default_channel_shift_scales_the_papers_2_px_on_64_px_tiles():
    assert [default_channel_shift(p) for p in (1, 7, 47, 48, 64, 80, 96)] == [1, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="patch_size must be >= 1"):
        default_channel_shift(0)


def test_channel_jitter_shifts_each_channel():
    x = _encoded(200, 3, 16, 16)
    out = channel_jitter(x, 2, generator=_gen())
    # Away from the border, each channel is its input translated by (dy, dx).
    centre = out[:, :, 8, 8].long() - torch.arange(3) * 256
    dy, dx = 8 - centre // 16, 8 - centre % 16
    assert dy.abs().max() == 2 and dx.abs().max() == 2
    for shift in (dy, dx):
        assert len(torch.unique(shift)) == 5
        assert (shift[:, 0] != shift[:, 1]).any()
    b, c = 7, 1
    expected = x[b, c, 4 - dy[b, c] : 12 - dy[b, c], 4 - dx[b, c] : 12 - dx[b, c]]
    assert torch.equal(out[b, c, 4:12, 4:12], expected)
    assert out.shape == x.shape
    mono = x[:, :1]
    assert channel_jitter(mono, 2, generator=_gen()) is mono
    assert channel_jitter(x, 0, generator=_gen()) is x


def test_context_geometry_defaults():
    assert context_geometry(28) == ContextGeometry(patch_size=7, gap=2, jitter=1)
    assert context_geometry(28).span == 27
    assert context_geometry((32, 64)) == (8, 2, 1)
    assert context_geometry(15) == (3, 2, 1)
    for size in range(15, 300, 7):
        geometry = context_geometry(size)
        assert geometry.span <= size and geometry.gap >= 2 * geometry.jitter
    with pytest.raises(ValueError, match="at least 15x15 pixels"):
        context_geometry((14, 100))


@pytest.mark.parametrize(
    "params, size, expected",
    [
        ({}, 28, (7, 2, 1)),
        ({"patch_size": 5}, 28, (5, 2, 1)),
        ({"gap": 4}, 28, (6, 4, 1)),
        ({"jitter": 0, "gap": 0}, 28, (9, 0, 0)),
        ({"jitter": 0}, 28, (8, 2, 0)),
        ({"jitter": 3}, 40, (7, 6, 3)),
    ],
)
def test_context_geometry_keeps_given_values_and_fills_the_image(params, size, expected):
    assert context_geometry(size, **params) == expected


def test_context_geometry_rejects_layouts_that_do_not_fit():
    with pytest.raises(ValueError, match="gap=2 must be at least 2 \\* jitter = 6"):
        context_geometry(40, gap=2, jitter=3)
    with pytest.raises(ValueError, match=r"^Mine \(9 px patches, a 2 px gap, 1 px jitter\) needs "
                       r"images of at least 33x33 pixels, got 28x40\.$"):
        context_geometry((28, 40), patch_size=9, method="Mine")
    with pytest.raises(ValueError, match="patch_size must be >= 1"):
        context_geometry(28, patch_size=0)


def test_context_neighbour_lies_at_the_claimed_position():
    patch, gap, jitter = 7, 2, 1
    x = _encoded(4000, 2, 30, 34)
    pairs, target = extract_context_pairs(x, patch, gap, jitter, generator=_gen(),
                                          normalize=False)
    assert pairs.shape == (4000, 2, 2, 7, 7) and target.dtype == torch.int64
    counts = torch.bincount(target, minlength=8)
    assert len(counts) == 8 and counts.min() > 400 and counts.max() < 600
    rows, cols = _decode(pairs, 30, 34)
    offsets = torch.tensor(CONTEXT_OFFSETS)[target] * (patch + gap)
    residual_r = rows[:, 1] - rows[:, 0] - offsets[:, 0]
    residual_c = cols[:, 1] - cols[:, 0] - offsets[:, 1]
    for residual in (residual_r, residual_c):
        assert residual.abs().max() == 2 * jitter
    # The centre moves across the whole range where the 3x3 layout fits.
    assert rows[:, 0].min() == jitter + patch + gap - jitter
    assert rows[:, 0].max() == 30 - 27 + jitter + patch + gap + jitter


def test_context_pairs_are_normalized_and_seeded():
    x = torch.randn(8, 3, 28, 28)
    geometry = context_geometry(28)._asdict()
    pairs, target = extract_context_pairs(x, **geometry, generator=_gen(3))
    std = pairs.std(dim=(-2, -1), unbiased=False)
    torch.testing.assert_close(std, torch.ones_like(std), atol=1e-4, rtol=0)
    again, target_again = extract_context_pairs(x, **geometry, generator=_gen(3))
    assert torch.equal(pairs, again) and torch.equal(target, target_again)


def test_context_pairs_reject_bad_layouts():
    with pytest.raises(ValueError, match="at least 27x27 pixels"):
        extract_context_pairs(torch.zeros(2, 1, 26, 28), 7, 2, 1, generator=_gen())
    with pytest.raises(ValueError, match="gap must be"):
        extract_context_pairs(torch.zeros(2, 1, 28, 28), 7, 1, 1, generator=_gen())
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        extract_context_pairs(torch.zeros(28, 28), 7, 2, 1, generator=_gen())


def test_rotations_are_all_four_quarter_turns_of_each_image():
    x = torch.arange(2 * 2 * 3 * 3, dtype=torch.float32).reshape(2, 2, 3, 3)
    inputs, targets = rotations(x)
    assert inputs.shape == (8, 2, 3, 3)
    assert targets.dtype == torch.int64 and targets.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    for k in range(4):
        for b in range(2):
            assert torch.equal(inputs[2 * k + b], torch.rot90(x[b], k, dims=(1, 2)))


def test_center_crop_square_keeps_the_centre():
    x = torch.arange(5 * 8, dtype=torch.float32).reshape(1, 1, 5, 8)
    assert torch.equal(center_crop_square(x), x[..., 1:6])
    assert torch.equal(center_crop_square(x.transpose(-2, -1)), x.transpose(-2, -1)[..., 1:6, :])
    assert center_crop_square(x[..., :5]).data_ptr() == x.data_ptr()


def test_turn_each_turns_every_image_by_its_own_quarter_turns():
    x = torch.randn(6, 3, 5, 5)
    turns = torch.tensor([0, 1, 2, 3, 1, 2])
    out = turn_each(x, turns)
    for b in range(6):
        assert torch.equal(out[b], torch.rot90(x[b], int(turns[b]), dims=(1, 2)))
    labels = torch.arange(32).view(2, 1, 4, 4)  # integer grids turn the same way
    assert torch.equal(turn_each(labels, torch.tensor([3, 0]))[0],
                       torch.rot90(labels[0], 3, dims=(1, 2)))
    wide = torch.randn(2, 1, 3, 5)
    assert torch.equal(turn_each(wide, torch.tensor([2, 0]))[0],
                       torch.rot90(wide[0], 2, dims=(1, 2)))
    with pytest.raises(ValueError, match="half turns"):
        turn_each(wide, torch.tensor([1, 0]))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        turn_each(x, torch.full((6,), 4))
    with pytest.raises(TypeError, match="integer tensor"):
        turn_each(x, torch.zeros(6))
    with pytest.raises(TypeError, match="one per image"):
        turn_each(x, torch.zeros(5, dtype=torch.long))
