"""rle_string_counts / rle_problem against pycocotools' own encoder."""
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mmft.structures.masks import polygon_is_finite, rle_problem, rle_string_counts


def _runs_to_mask(runs, h, w):
    """Column-major runs of 0s and 1s (COCO's order) to an (h, w) mask."""
    return np.repeat(np.arange(len(runs)) % 2, runs).reshape(w, h).T


@pytest.mark.parametrize('seed', range(4))
def test_compressed_counts_decode_to_the_encoded_mask(seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        h, w = (int(v) for v in rng.integers(1, 200, 2))
        mask = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        mask[: h // 3, w // 4:] = 1  # long runs too: several 5-bit groups, negative deltas
        rle = mask_utils.encode(np.asfortranarray(mask))
        for counts in (rle['counts'], rle['counts'].decode()):
            runs = rle_string_counts(counts)
            assert runs.sum() == h * w
            assert np.array_equal(_runs_to_mask(runs, h, w), mask)
            assert rle_problem(dict(size=[h, w], counts=counts), h, w) is None


@pytest.mark.parametrize('rle, problem', [
    (dict(size=[4, 4], counts=[3, 4]), 'cover 7 pixels, not 4 x 4'),
    (dict(size=[4, 4], counts=[3, -1, 14]), 'negative run lengths'),
    (dict(size=[4, 4], counts='#!'), 'not a compressed COCO RLE'),
    (dict(size=[4, 4], counts='0'), 'cover 0 pixels'),
    (dict(size=[4, 4], counts='0o'), 'not a compressed COCO RLE'),  # cut inside a count
    (dict(size=[4, 4], counts=[16.0]), 'neither a compressed string nor a list of ints'),
    (dict(size=[8, 4], counts=[16]), "size [8, 4] is not the image's [4, 4]"),
    (dict(counts=[16]), 'not an RLE dict'),
])
def test_unusable_rles_are_named(rle, problem):
    assert problem in rle_problem(rle, 4, 4)
    assert rle_problem(dict(size=[4, 4], counts=[16]), 4, 4) is None


def test_polygon_is_finite():
    assert polygon_is_finite([0, 0, 4, 0, 4, 4])
    assert not polygon_is_finite([0, 0, float('nan'), 0, 4, 4])
    assert not polygon_is_finite([0, 0, float('inf'), 0, 4, 4])
    assert not polygon_is_finite([0, 0, 'x', 0, 4, 4])
    assert not polygon_is_finite([[0, 0], [4, 0]])
