"""eval_map / average_precision / box_overlaps against values computed by hand
(the VOC case and its APs: the ``voc_case`` fixture in tests/test_evaluation/conftest.py)."""
import numpy as np
import pytest
from mmengine.logging import MMLogger

from mmft.evaluation.functional import average_precision, box_overlaps, eval_map


def test_average_precision_both_modes(voc_case):
    recalls, precisions = np.array([.5, .5, .5, 1.]), np.array([1., 1., .5, 2 / 3])
    for mode in ('11points', 'area'):
        assert average_precision(recalls, precisions, mode) == pytest.approx(
            voc_case.ap[f'cat_{mode}'], abs=1e-6)
    both = average_precision(np.stack([recalls] * 2), np.stack([precisions] * 2), 'area')
    assert both.shape == (2,) and both == pytest.approx([voc_case.ap['cat_area']] * 2, abs=1e-6)
    with pytest.raises(ValueError, match="'area' or '11points'"):
        average_precision(recalls, precisions, 'voc')


@pytest.mark.parametrize('mode', ['11points', 'area'])
def test_eval_map_hand_computed_with_difficult_boxes(mode, voc_case):
    cat_ap, dog_ap = voc_case.ap[f'cat_{mode}'], voc_case.ap['dog']
    mean_ap, per_class = eval_map(voc_case.dets, voc_case.anns, iou_thr=0.5,
                                  use_legacy_coordinate=True, eval_mode=mode, logger='silent')
    assert per_class[0]['ap'] == pytest.approx(cat_ap, abs=1e-6)
    assert per_class[1]['ap'] == pytest.approx(dog_ap, abs=1e-6)
    assert mean_ap == pytest.approx((cat_ap + dog_ap) / 2, abs=1e-6)
    # the difficult gt is not counted; the detection on it is kept but neither TP nor FP
    assert per_class[0]['num_gts'] == 2 and per_class[0]['num_dets'] == 4
    np.testing.assert_allclose(per_class[0]['precision'], [1, 1, .5, 2 / 3], atol=1e-6)


def test_difficult_box_counted_as_gt_changes_ap(voc_case):
    """Without the ignore flag the box hit at score 0.8 is a TP and a third gt."""
    anns = voc_case.anns
    anns[0]['bboxes'] = np.vstack([anns[0]['bboxes'], anns[0]['bboxes_ignore']])
    anns[0]['labels'] = np.r_[anns[0]['labels'], 0]
    del anns[0]['bboxes_ignore'], anns[0]['labels_ignore']
    _, per_class = eval_map(voc_case.dets, anns, use_legacy_coordinate=True, eval_mode='area',
                            logger='silent')
    # TP TP FP TP over 3 gts: recall 1/3 2/3 2/3 1, precision 1 1 2/3 3/4
    assert per_class[0]['ap'] == pytest.approx(2 / 3 + 1 / 3 * 3 / 4, abs=1e-6)


def test_eval_map_scale_ranges_and_no_gt_class():
    anns = [dict(bboxes=np.array([[0, 0, 9, 9], [0, 0, 99, 99]], np.float32),
                 labels=np.array([0, 0]))]
    dets = [[np.array([[0, 0, 9, 9, .9]], np.float32), np.array([[0, 0, 5, 5, .3]], np.float32)]]
    mean_ap, per_class = eval_map(dets, anns, scale_ranges=[(0, 32), (32, 1e5)],
                                  use_legacy_coordinate=True, logger='silent')
    # small range: the one small gt found; large range: its gt missed, the small det not an FP
    assert per_class[0]['num_gts'].tolist() == [1, 1]
    assert per_class[0]['ap'].tolist() == pytest.approx([1., 0.])
    assert mean_ap == pytest.approx([1., 0.])  # class 1 has no gt: left out of the mean


def test_box_overlaps_legacy_and_plain():
    a, b = np.array([[0, 0, 9, 9]], np.float32), np.array([[5, 0, 14, 9]], np.float32)
    assert box_overlaps(a, b, use_legacy_coordinate=True)[0, 0] == pytest.approx(50 / 150)
    assert box_overlaps(a, b)[0, 0] == pytest.approx(36 / 126)
    assert box_overlaps(a, b, mode='iof', use_legacy_coordinate=True)[0, 0] == pytest.approx(.5)
    assert box_overlaps(np.zeros((0, 4)), b).shape == (0, 1)


def test_eval_map_logs_class_table(read_log, voc_case):
    eval_map(voc_case.dets, voc_case.anns, dataset=['cat', 'dog'], use_legacy_coordinate=True,
             logger=MMLogger.get_current_instance())
    log = read_log()
    for word in ('class', 'gts', 'dets', 'recall', 'ap', 'cat', 'dog', 'mAP'):
        assert word in log
