"""corrupt_tiles: every tile is what its target says."""

import pytest
import torch

from skssl.ops import INTACT, INTRUDER, MISPLACED, ROTATED, TILE_CLASSES, corrupt_tiles


def _tiles(img, grid):
    """The ``grid x grid`` tiles of ``img`` (C, H, W), as corrupt_tiles cuts them."""
    height, width = img.shape[1:]
    rows = [(i * height + grid - 1) // grid for i in range(grid + 1)]
    cols = [(j * width + grid - 1) // grid for j in range(grid + 1)]
    return [img[:, rows[i] : rows[i + 1], cols[j] : cols[j + 1]]
            for i in range(grid) for j in range(grid)]


def _fit(tile, size):
    rows = torch.arange(size[0]).clamp(max=tile.shape[1] - 1)
    cols = torch.arange(size[1]).clamp(max=tile.shape[2] - 1)
    return tile[:, rows][:, :, cols]


@pytest.mark.parametrize("shape, grid", [((6, 1, 28, 28), 4), ((5, 3, 10, 13), 3)])
def test_each_tile_is_what_its_target_says(shape, grid):
    x = torch.randn(shape)
    out, targets = corrupt_tiles(x, grid, 0.3, 0.3, 0.3, min_change=0.0,
                                 generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and targets.shape == (len(x), grid * grid)
    assert targets.dtype == torch.int64
    assert set(targets.unique().tolist()) == {INTACT, INTRUDER, MISPLACED, ROTATED}
    for b in range(len(x)):
        before, after = _tiles(x[b], grid), _tiles(out[b], grid)
        others = [_tiles(x[d], grid) for d in range(len(x)) if d != b]
        for t, kind in enumerate(targets[b].tolist()):
            tile = after[t]
            if kind == INTACT:
                assert torch.equal(tile, before[t])
            elif kind == INTRUDER:  # the same tile of another image
                assert any(torch.equal(tile, other[t]) for other in others)
            elif kind == ROTATED:
                assert torch.equal(tile, before[t].flip(-1, -2))
            else:  # another tile of the same image, cut (or edge-padded) to this size
                assert any(torch.equal(tile, _fit(src, tile.shape[1:]))
                           for s, src in enumerate(before) if s != t)


def test_corruptions_that_change_nothing_are_intact():
    x = torch.zeros(4, 1, 8, 8)
    x[0, :, :4, :4] = torch.arange(16.0).reshape(4, 4)  # one textured tile in one image
    out, targets = corrupt_tiles(x, 2, 0.4, 0.3, 0.3, generator=torch.Generator().manual_seed(1))
    changed = torch.stack([torch.stack([(a != b).any() for a, b in zip(
        _tiles(out[i], 2), _tiles(x[i], 2), strict=True)]) for i in range(4)])
    torch.testing.assert_close(targets != INTACT, changed)
    assert changed.sum() < 4 * 4  # most corruptions moved zeros over zeros


def test_probabilities_and_determinism():
    x = torch.randn(8, 1, 12, 12)
    _, all_intruders = corrupt_tiles(x, 3, 1.0, 0.0, 0.0, generator=torch.Generator())
    assert (all_intruders == INTRUDER).all()
    _, nothing = corrupt_tiles(x, 3, 0.0, 0.0, 0.0, generator=torch.Generator())
    assert (nothing == INTACT).all()
    a = corrupt_tiles(x, generator=torch.Generator().manual_seed(5))
    b = corrupt_tiles(x, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="sum to at most 1; got 0.6, 0.3 and 0.2"):
        corrupt_tiles(x, 3, 0.6, 0.3, 0.2, generator=torch.Generator())


def test_images_smaller_than_the_grid():
    x = torch.randn(4, 1, 1, 7)
    out, targets = corrupt_tiles(x, 4, 0.3, 0.3, 0.3, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # one row of tiles: the three rows of labels below it are always intact
    assert (targets.reshape(4, 4, 4)[:, 1:] == INTACT).all()


def test_tile_classes_are_the_target_values():
    assert [INTACT, INTRUDER, MISPLACED, ROTATED] == list(range(len(TILE_CLASSES)))
    assert TILE_CLASSES == ("intact", "intruder", "misplaced", "rotated")


def test_similar_donors_come_from_the_most_similar_images():
    # Two families of images: pairs (2i, 2i+1) nearly equal, the pairs far apart.
    base = torch.randn(6, 1, 14, 14) * 3
    x = torch.repeat_interleave(base, 2, dim=0) + 0.01 * torch.randn(12, 1, 14, 14)
    out, targets = corrupt_tiles(x, 2, 1.0, 0.0, 0.0, min_change=0.0,
                                 generator=torch.Generator().manual_seed(0), similar_donors=1)
    assert (targets == INTRUDER).all()
    for b in range(len(x)):
        twin = b ^ 1
        for t, tile in enumerate(_tiles(out[b], 2)):
            assert torch.equal(tile, _tiles(x[twin], 2)[t])
    # Capped at the other images of the batch; an image is never its own donor.
    _, targets = corrupt_tiles(x[:2], 2, 1.0, 0.0, 0.0, min_change=0.0,
                               generator=torch.Generator(), similar_donors=50)
    assert (targets == INTRUDER).all()
    with pytest.raises(ValueError, match="similar_donors"):
        corrupt_tiles(x, generator=torch.Generator(), similar_donors=0)
