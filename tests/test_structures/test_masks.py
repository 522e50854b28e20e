"""BitmapMasks and PolygonMasks agree with each other and with fixed expected pixels."""
import numpy as np
import pytest
import torch

from mmft.structures import BitmapMasks, PolygonMasks, polygons_to_bitmap

H, W = 20, 30
# a rectangle over columns 4..13 and rows 2..7 (pixel edges 4..14, 2..8) and a triangle
RECT = [np.array([4, 2, 14, 2, 14, 8, 4, 8], dtype=float)]
TRI = [np.array([20, 10, 28, 18, 20, 18], dtype=float)]


@pytest.fixture
def polys() -> PolygonMasks:
    return PolygonMasks([RECT, TRI], H, W)


@pytest.fixture
def bitmaps(polys) -> BitmapMasks:
    return polys.to_bitmap()


def test_polygon_rasterises_on_pixel_edges(polys):
    rect = polys.to_ndarray()[0]
    assert rect.sum() == 10 * 6
    assert rect[2:8, 4:14].all()
    assert polys.areas[0] == 60.0
    assert torch.equal(polys.get_bboxes()[0], torch.tensor([4., 2., 14., 8.]))


def test_bitmap_boxes_and_areas(bitmaps):
    assert bitmaps.masks.dtype == np.uint8 and bitmaps.masks.shape == (2, H, W)
    assert torch.equal(bitmaps.get_bboxes()[0], torch.tensor([4., 2., 14., 8.]))
    assert bitmaps.areas[0] == 60.0
    empty = BitmapMasks(np.zeros((1, H, W), np.uint8), H, W)
    assert torch.equal(empty.get_bboxes(), torch.zeros(1, 4))


@pytest.mark.parametrize('direction', ['horizontal', 'vertical', 'diagonal'])
def test_flip_twice_is_identity_and_types_agree(polys, bitmaps, direction):
    np.testing.assert_array_equal(bitmaps.flip(direction).flip(direction).masks, bitmaps.masks)
    from_polys, from_bits = polys.flip(direction).to_ndarray(), bitmaps.flip(direction).masks
    np.testing.assert_array_equal(from_polys[0], from_bits[0])
    # the triangle's slanted edge runs through pixel corners: the two rasterisations may
    # differ by at most one pixel per row along it
    assert (from_polys[1] ^ from_bits[1]).sum() <= 8


def test_horizontal_flip_moves_the_rectangle(bitmaps):
    flipped = bitmaps.flip('horizontal')
    assert torch.equal(flipped.get_bboxes()[0], torch.tensor([16., 2., 26., 8.]))


def test_resize_and_rescale_scale_both_types_alike(polys, bitmaps):
    out = polys.resize((40, 60))
    assert (out.height, out.width) == (40, 60)
    assert torch.equal(out.get_bboxes()[0], torch.tensor([8., 4., 28., 16.]))
    np.testing.assert_array_equal(out.to_ndarray()[0], bitmaps.resize((40, 60)).masks[0])
    # (long, short) bounds: 30x20 -> the short edge 20 may grow to 40, the long 30 to 100
    rescaled = bitmaps.rescale((100, 40))
    assert (rescaled.height, rescaled.width) == (40, 60)
    assert polys.rescale(0.5).height == 10


def test_pad_keeps_pixels(polys, bitmaps):
    padded = bitmaps.pad((32, 32))
    assert padded.masks.shape == (2, 32, 32)
    np.testing.assert_array_equal(padded.masks[:, :H, :W], bitmaps.masks)
    assert padded.masks[:, H:].sum() == 0
    np.testing.assert_array_equal(polys.pad((32, 32)).to_ndarray(), padded.masks)
    with pytest.raises(ValueError, match='smaller'):
        bitmaps.pad((10, 10))


def test_crop_clips_polygons_exactly(polys, bitmaps):
    box = np.array([8, 0, 24, 14])
    cropped_bits = bitmaps.crop(box)
    cropped_polys = polys.crop(box)
    assert cropped_bits.masks.shape == (2, 14, 16)
    np.testing.assert_array_equal(cropped_polys.to_ndarray(), cropped_bits.masks)
    # the rectangle keeps its columns 8..13 only: 6 x 6 pixels
    assert cropped_polys.areas[0] == 36.0


def test_crop_and_resize_gives_mask_targets(polys, bitmaps):
    boxes = torch.tensor([[4., 2., 14., 8.], [0., 0., 30., 20.]])
    inds = torch.tensor([0, 0])
    from_bits = bitmaps.crop_and_resize(boxes, (14, 14), inds)
    from_polys = polys.crop_and_resize(boxes, (14, 14), inds)
    assert from_bits.masks.shape == (2, 14, 14)
    assert from_bits.masks[0].all()  # the box is the mask: all foreground
    assert from_polys.masks[0].all()
    # whole-image box: the mask covers a third of the width and 0.3 of the height
    agree = (from_bits.masks[1] == from_polys.masks[1]).mean()
    assert agree > 0.95
    assert 0.05 < from_bits.masks[1].mean() < 0.15
    # soft targets keep fractions: a quarter of this box is mask
    soft = bitmaps.crop_and_resize(torch.tensor([[2., 0., 6., 4.]]), (1, 1), [0], binarize=False)
    assert soft.masks.dtype == np.float32
    np.testing.assert_allclose(soft.masks[0, 0, 0], 0.25)


def test_indexing_and_empty_sets(polys, bitmaps):
    assert len(bitmaps[torch.tensor([True, False])]) == 1
    assert len(polys[[1]]) == 1 and polys[1].masks[0][0].size == 6
    empty = bitmaps[np.array([], dtype=np.int64)]
    assert len(empty) == 0 and empty.crop_and_resize(torch.zeros(0, 4), (7, 7), []).masks.shape \
        == (0, 7, 7)
    assert PolygonMasks([], H, W).to_ndarray().shape == (0, H, W)


def test_translate_and_expand(polys, bitmaps):
    moved = bitmaps.translate((H, W), 3, 'horizontal', interpolation='nearest')
    assert torch.equal(moved.get_bboxes()[0], torch.tensor([7., 2., 17., 8.]))
    np.testing.assert_array_equal(polys.translate((H, W), 3).to_ndarray(), moved.masks)
    big = polys.expand(40, 50, 5, 6)
    assert torch.equal(big.get_bboxes()[0], torch.tensor([10., 7., 20., 13.]))
    np.testing.assert_array_equal(big.to_ndarray(), bitmaps.expand(40, 50, 5, 6).masks)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match='>= 3'):
        PolygonMasks([[np.array([0, 0, 1, 1])]], H, W)
    with pytest.raises(ValueError, match='expects'):
        BitmapMasks(np.zeros((1, 5, 5)), H, W)
    with pytest.raises(ValueError, match='flip direction'):
        PolygonMasks([RECT], H, W).flip('sideways')
    assert polygons_to_bitmap([], 4, 4).sum() == 0


def test_list_of_bools_and_border_crops(polys, bitmaps):
    assert len(polys[[True, False]]) == 1 and len(bitmaps[[True, False]]) == 1
    assert len(polys[[1, 0]]) == 2
    edge = bitmaps.crop(np.array([W + 5, 0, W + 9, 5]))  # past the right border
    assert edge.masks.shape == (2, 5, 1)
    np.testing.assert_array_equal(polys.crop(np.array([W, 0, W, 5])).to_ndarray(),
                                  bitmaps.crop(np.array([W, 0, W, 5])).masks)
