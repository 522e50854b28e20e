"""CopyPaste: pasted pixels, occluded destination objects trimmed or dropped, masks and
labels in step; an empty selection and an empty destination."""
import numpy as np
import pytest

from mmft.registry import TRANSFORMS
from mmft.structures.masks import BitmapMasks, PolygonMasks

from tests.test_datasets.test_transforms.transform_samples import H, W, make_results


def _source(boxes, labels):
    masks = np.zeros((len(boxes), H, W), np.uint8)
    for m, (x1, y1, x2, y2) in zip(masks, boxes):
        m[y1:y2, x1:x2] = 1
    return dict(img=np.full((H, W, 3), 7, np.uint8), gt_bboxes=np.array(boxes, np.float32),
                gt_bboxes_labels=np.array(labels), gt_ignore_flags=np.zeros(len(boxes), bool),
                gt_masks=BitmapMasks(masks, H, W))


@pytest.mark.parametrize('mask_type', ['bitmap', 'polygon'])
def test_paste_all_trims_and_drops_occluded(mask_type):
    dst = make_results(mask_type)  # boxes [4,6,20,18], [30,10,60,40], [50,30,64,48]
    # source object 1 covers all of dst box 0; object 2 covers dst box 1's left part
    src = _source([[0, 0, 24, 24], [30, 10, 45, 40]], [10, 11])
    dst['mix_results'] = [src]
    out = TRANSFORMS.build(dict(type='CopyPaste', selected=False, bbox_occluded_thr=10,
                                mask_occluded_thr=300))(dst)
    # dst 0: fully covered -> dropped; dst 1: trimmed to [45,10,60,40] (moved 15 > 10 px,
    # but 15*30 = 450 > 300 pixels left) -> kept; dst 2 moves by 0 px (the pasted
    # [30..45] x [10..40] does not reach x >= 50) -> kept
    assert out['gt_bboxes_labels'].tolist() == [1, 2, 10, 11]
    assert out['gt_ignore_flags'].tolist() == [False, True, False, False]
    np.testing.assert_allclose(out['gt_bboxes'], [[45, 10, 60, 40], [50, 30, 64, 48],
                                                  [0, 0, 24, 24], [30, 10, 45, 40]])
    masks = out['gt_masks']
    assert isinstance(masks, BitmapMasks) and len(masks) == 4
    np.testing.assert_allclose(masks.get_bboxes().numpy(), out['gt_bboxes'])
    assert (out['img'][0:24, 0:24] == 7).all() and (out['img'][10:40, 30:45] == 7).all()
    assert not (out['img'][45:, 46:] == 7).all()  # untouched outside the pasted pixels


def test_strict_thresholds_drop_a_trimmed_object():
    dst = make_results('bitmap')
    dst['mix_results'] = [_source([[30, 10, 45, 40]], [11])]
    out = TRANSFORMS.build(dict(type='CopyPaste', selected=False, bbox_occluded_thr=10,
                                mask_occluded_thr=1000))(dst)
    assert out['gt_bboxes_labels'].tolist() == [0, 2, 11]


def test_nothing_selected_or_nothing_in_destination():
    np.random.seed(3)
    paste = TRANSFORMS.build(dict(type='CopyPaste', max_num_pasted=1))  # picks 0 objects
    dst = make_results('bitmap')
    dst['mix_results'] = [_source([[0, 0, 10, 10]], [5])]
    img = dst['img'].copy()
    out = paste(dst)
    np.testing.assert_array_equal(out['img'], img)
    assert out['gt_bboxes_labels'].tolist() == [0, 1, 2]
    empty = dict(img=np.zeros((H, W, 3), np.uint8), gt_bboxes=np.zeros((0, 4), np.float32),
                 gt_bboxes_labels=np.zeros(0, np.int64), gt_ignore_flags=np.zeros(0, bool),
                 gt_masks=PolygonMasks([], H, W), mix_results=[_source([[0, 0, 10, 10]], [5])])
    out = TRANSFORMS.build(dict(type='CopyPaste', selected=False))(empty)
    assert out['gt_bboxes_labels'].tolist() == [5] and len(out['gt_masks']) == 1


def test_paste_by_box_and_errors():
    dst = make_results('bitmap')
    src = _source([[0, 0, 10, 10]], [5])
    del src['gt_masks']
    dst['mix_results'] = [src]
    with pytest.raises(KeyError, match='paste_by_box=True'):
        TRANSFORMS.build(dict(type='CopyPaste', selected=False))(dict(dst))
    out = TRANSFORMS.build(dict(type='CopyPaste', selected=False, paste_by_box=True))(dst)
    assert out['gt_bboxes_labels'].tolist()[-1] == 5
    assert (out['img'][:10, :10] == 7).all()
    with pytest.raises(KeyError, match='mix_results'):
        TRANSFORMS.build(dict(type='CopyPaste'))(make_results())
    small = make_results()
    small['mix_results'] = [dict(_source([[0, 0, 5, 5]], [1]), img=np.zeros((8, 8, 3)))]
    with pytest.raises(ValueError, match='differ in size'):
        TRANSFORMS.build(dict(type='CopyPaste'))(small)
    assert 0 <= TRANSFORMS.build(dict(type='CopyPaste')).get_indexes(range(5)) < 5
