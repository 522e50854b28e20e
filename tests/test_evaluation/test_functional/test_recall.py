"""eval_recalls against values computed by hand."""
import numpy as np
import pytest

from mmft.evaluation.functional import eval_recalls


def test_eval_recalls_top_n_and_thresholds():
    gts = [np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32),
           np.array([[0, 0, 10, 20]], np.float32)]
    proposals = [
        # given unsorted with scores: the best one (IoU 1 with gt 0) ranks first,
        # the second covers gt 1 with IoU 6/10 (x 20..26 of 20..30)
        np.array([[20, 0, 26, 10, .5], [0, 0, 10, 10, .9], [40, 40, 50, 50, .1]], np.float32),
        # IoU 10*10 / (10*20) = 0.5 with the only gt
        np.array([[0, 0, 10, 10]], np.float32),
    ]
    recalls = eval_recalls(gts, proposals, proposal_nums=[1, 2, 3], iou_thrs=[0.5, 0.7],
                           logger='silent')
    assert recalls.shape == (3, 2)
    np.testing.assert_allclose(recalls, [[2 / 3, 1 / 3], [1., 1 / 3], [1., 1 / 3]])


def test_eval_recalls_one_proposal_covers_one_gt():
    gts = [np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)]
    recalls = eval_recalls(gts, [np.array([[0, 0, 10, 10]], np.float32)], 10, 0.5,
                           logger='silent')
    assert recalls[0, 0] == pytest.approx(0.5)


def test_eval_recalls_without_proposals_or_gts():
    gts = [np.array([[0, 0, 10, 10]], np.float32), np.zeros((0, 4), np.float32)]
    recalls = eval_recalls(gts, [np.zeros((0, 5)), np.array([[0, 0, 5, 5, 1.]])], [1, 5],
                           logger='silent')
    assert recalls.tolist() == [[0.], [0.]]
