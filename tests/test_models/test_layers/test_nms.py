"""batched_nms: hard NMS as torchvision's, Soft-NMS as the paper's Algorithm 1, config checks."""
import math

import pytest
import torch
from torchvision.ops import batched_nms as tv_batched_nms

from mmft.models.layers.nms import batched_nms, check_nms_cfg, check_nms_cfgs, soft_nms


def _iou(a, b):
    """IoU of two (x1, y1, x2, y2) boxes, in plain Python."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _paper_soft_nms(boxes, scores, method, iou_threshold=0.3, sigma=0.5, min_score=1e-3):
    """Bodla et al. 2017, Algorithm 1, written from the paper on Python lists:
    B, S; D = {}; while B: m = argmax S; M = b_m; D <- D + M; B <- B - M;
    for b_i in B: s_i <- s_i f(iou(M, b_i)), with f linear (1 - iou above N_t, the
    threshold strict as MMCV's) or Gaussian (exp(-iou^2 / sigma)); boxes whose score fell
    below min_score leave B (MMCV's pruning). Returns [(index, final score)] in order."""
    remaining = list(range(len(boxes)))
    s = list(scores)
    out = []
    while remaining:
        m = max(remaining, key=lambda i: (s[i], -i))  # the first of equal scores
        out.append((m, s[m]))
        remaining.remove(m)
        for i in remaining:
            iou = _iou(boxes[m], boxes[i])
            if method == 'linear':
                s[i] *= (1 - iou) if iou > iou_threshold else 1.0
            else:
                s[i] *= math.exp(-iou * iou / sigma)
        remaining = [i for i in remaining if s[i] >= min_score]
    return out


def _random_boxes(n, seed, size=100.0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * size * 0.6
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * size * 0.4 + 2
    scores = torch.rand(n, generator=g, dtype=torch.float64)
    return torch.cat([xy, xy + wh], dim=1), scores


@pytest.mark.parametrize('method', ['linear', 'gaussian'])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_soft_nms_equals_the_papers_algorithm(method, seed):
    boxes, scores = _random_boxes(60, seed)
    dets, keep = soft_nms(boxes, scores, iou_threshold=0.3, sigma=0.5, min_score=0.05,
                          method=method)
    expected = _paper_soft_nms(boxes.tolist(), scores.tolist(), method, 0.3, 0.5, 0.05)
    assert keep.tolist() == [i for i, _ in expected]
    assert dets[:, 4].tolist() == pytest.approx([s for _, s in expected], rel=1e-9)
    torch.testing.assert_close(dets[:, :4], boxes[keep])
    assert len(expected) > 10 and any(s < scores[i] for i, s in expected)  # decayed, kept


def test_soft_nms_on_a_hand_computed_pair():
    boxes = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 5.]])  # IoU 0.5
    scores = torch.tensor([0.9, 0.8])
    linear = soft_nms(boxes, scores, iou_threshold=0.3)[0]
    assert linear[:, 4].tolist() == pytest.approx([0.9, 0.8 * 0.5])
    gaussian = soft_nms(boxes, scores, sigma=0.5, method='gaussian')[0]
    assert gaussian[:, 4].tolist() == pytest.approx([0.9, 0.8 * math.exp(-0.25 / 0.5)])
    # below the threshold the linear method leaves a score alone; naive is hard NMS
    assert soft_nms(boxes, scores, iou_threshold=0.6)[0][:, 4].tolist() == pytest.approx(
        [0.9, 0.8])
    assert soft_nms(boxes, scores, iou_threshold=0.3, method='naive')[1].tolist() == [0]
    # decayed below min_score: dropped
    assert soft_nms(boxes, scores, iou_threshold=0.3, min_score=0.5)[1].tolist() == [0]


@pytest.mark.parametrize('method', ['linear', 'gaussian'])
def test_batched_soft_nms_is_soft_nms_per_class(method):
    boxes, scores = _random_boxes(80, 3)
    idxs = torch.randint(0, 4, (80,), generator=torch.Generator().manual_seed(3))
    cfg = dict(type='soft_nms', iou_threshold=0.4, sigma=0.3, min_score=0.02, method=method)
    dets, keep = batched_nms(boxes, scores, idxs, cfg)
    expected = {}
    for c in range(4):
        members = torch.nonzero(idxs == c)[:, 0]
        for i, s in _paper_soft_nms(boxes[members].tolist(), scores[members].tolist(), method,
                                    0.4, 0.3, 0.02):
            expected[int(members[i])] = s
    assert sorted(keep.tolist()) == sorted(expected)
    assert dets[:, 4].tolist() == pytest.approx([expected[int(k)] for k in keep], rel=1e-9)
    assert (dets[:-1, 4] >= dets[1:, 4]).all()  # descending
    torch.testing.assert_close(dets[:, :4], boxes[keep])  # the boxes, not the shifted ones


def test_hard_nms_is_torchvisions_and_none_sorts():
    boxes, scores = _random_boxes(50, 4)
    idxs = torch.arange(50) % 3
    dets, keep = batched_nms(boxes, scores, idxs, dict(type='nms', iou_threshold=0.5))
    assert keep.tolist() == tv_batched_nms(boxes, scores, idxs, 0.5).tolist()
    torch.testing.assert_close(dets, torch.cat([boxes[keep], scores[keep, None]], 1))
    agnostic = batched_nms(boxes, scores, idxs, dict(type='nms', iou_threshold=0.5,
                                                     class_agnostic=True, split_thr=10000))[1]
    assert agnostic.tolist() == tv_batched_nms(boxes, scores, torch.zeros_like(idxs),
                                               0.5).tolist()
    dets, keep = batched_nms(boxes, scores, idxs, None)
    assert keep.tolist() == scores.argsort(descending=True).tolist()
    empty = batched_nms(boxes[:0], scores[:0], idxs[:0], dict(type='soft_nms'))
    assert empty[0].shape == (0, 5) and empty[1].shape == (0,)


def test_bad_nms_configs_name_the_key_the_value_and_the_fix():
    with pytest.raises(ValueError, match=r"test_cfg.rcnn.nms.type='matrix_nms' is not an NMS "
                                         r"mmft runs; use one of \['nms', 'soft_nms'\]"):
        check_nms_cfg(dict(type='matrix_nms'), 'test_cfg.rcnn.nms')
    with pytest.raises(ValueError, match=r"x.nms needs iou_threshold, e.g. dict\(type='nms'"):
        check_nms_cfg(dict(type='nms'), 'x.nms')
    with pytest.raises(ValueError, match=r"unknown keys \['sigma'\]"):
        check_nms_cfg(dict(type='nms', iou_threshold=0.5, sigma=0.5))
    with pytest.raises(ValueError, match=r"method='exp': Soft-NMS methods are"):
        check_nms_cfg(dict(type='soft_nms', method='exp'))
    with pytest.raises(ValueError, match='sigma must be a number > 0'):
        check_nms_cfg(dict(type='soft_nms', method='gaussian', sigma=0))
    with pytest.raises(ValueError, match=r'iou_threshold must be a number in \[0, 1\]'):
        check_nms_cfg(dict(type='nms', iou_threshold=5))
    check_nms_cfg(None)
    check_nms_cfg(dict(type='soft_nms'))  # MMCV's defaults


def test_check_nms_cfgs_finds_every_nms_entry():
    test_cfg = dict(rpn=dict(nms_pre=1000, nms=dict(type='nms', iou_threshold=0.7)),
                    rcnn=[dict(score_thr=0.05), dict(nms=dict(type='soft_nms_v2'))])
    with pytest.raises(ValueError, match=r"test_cfg.rcnn.1.nms.type='soft_nms_v2'"):
        check_nms_cfgs(test_cfg, 'test_cfg')
    test_cfg['rcnn'][1]['nms'] = dict(type='soft_nms', iou_threshold=0.5)
    check_nms_cfgs(test_cfg, 'test_cfg')
    check_nms_cfgs(None, 'train_cfg')
