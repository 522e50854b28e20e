"""CascadeRoIHead: the stage loop against values computed here, step by step.

The parts it reuses (RoI extractor, box and mask heads) have their own tests; here
their forward passes are called directly and everything the cascade adds is redone
by hand: assignment at each stage's IoU, sampling order, targets and losses, the
stage loss weights, the refinement of sampled RoIs into the next stage's
proposals (gt boxes dropped), and the test-time score averaging.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torchvision.ops import box_iou

from mmft.registry import MODELS
from mmft.structures import BitmapMasks, DetDataSample

C = 8  # feature channels
NUM_CLASSES = 3
STDS = ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
IOU_THRS = (0.5, 0.6, 0.7)
WEIGHTS = (1, 0.5, 0.25)


def _cascade(with_mask=False, num=512, pos_fraction=1.0, **overrides):
    """Three stages on one feature level; the default sampler takes every candidate."""
    extractor = dict(type='SingleRoIExtractor', out_channels=C, featmap_strides=[4])
    bbox_heads = [dict(type='Shared2FCBBoxHead', in_channels=C, fc_out_channels=16,
                       roi_feat_size=7, num_classes=NUM_CLASSES, reg_class_agnostic=True,
                       bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                                       target_stds=stds),
                       loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False),
                       loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
                  for stds in STDS]
    stage_cfgs = [dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=thr, neg_iou_thr=thr,
                                     min_pos_iou=thr, match_low_quality=False,
                                     ignore_iof_thr=-1),
                       sampler=dict(type='RandomSampler', num=num, pos_fraction=pos_fraction,
                                    neg_pos_ub=-1, add_gt_as_proposals=True),
                       mask_size=14, pos_weight=-1, debug=False)
                  for thr in IOU_THRS]
    cfg = dict(type='CascadeRoIHead', num_stages=3, stage_loss_weights=list(WEIGHTS),
               bbox_roi_extractor=dict(extractor, roi_layer=dict(type='RoIAlign', output_size=7,
                                                                 sampling_ratio=0)),
               bbox_head=bbox_heads, train_cfg=stage_cfgs,
               test_cfg=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                             max_per_img=100, mask_thr_binary=0.5))
    if with_mask:
        cfg['mask_roi_extractor'] = dict(extractor, roi_layer=dict(
            type='RoIAlign', output_size=7, sampling_ratio=0))
        cfg['mask_head'] = dict(type='FCNMaskHead', num_convs=1, in_channels=C,
                                conv_out_channels=C, num_classes=NUM_CLASSES)
    cfg.update(overrides)
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.init_weights()
    # larger weights than the init, so that stages move boxes visibly
    with torch.no_grad():
        for stage_head in head.bbox_head:
            stage_head.fc_reg.weight.normal_(0, 0.3)
            stage_head.fc_cls.weight.normal_(0, 0.3)
    return head


def _feats(batch=2, size=64):
    torch.manual_seed(1)
    return (torch.randn(batch, C, size // 4, size // 4),)


def _sample(boxes, labels, shape=(64, 64)):
    h, w = shape
    s = DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, scale_factor=(1., 1.),
                                    pad_shape=shape))
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    masks = np.zeros((len(boxes), h, w), np.uint8)
    for m, (x1, y1, x2, y2) in zip(masks, boxes.int().tolist()):
        m[y1:y2, x1:x2] = 1
    s.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor(labels, dtype=torch.long),
                                  masks=BitmapMasks(masks, h, w))
    return s


GTS = [([[8., 8., 36., 30.], [30., 34., 60., 62.]], [0, 2]), ([[10., 20., 50., 50.]], [1])]
PROPOSALS = [
    torch.tensor([[9., 7., 35., 31.], [6., 10., 30., 28.], [28., 30., 58., 60.],
                  [40., 40., 62., 63.], [0., 0., 12., 12.], [20., 5., 44., 33.]]),
    torch.tensor([[12., 18., 48., 52.], [5., 25., 40., 45.], [40., 0., 64., 20.],
                  [14., 22., 52., 46.]]),
]


# ---------------------------------------------------------------- the reference, by hand
def _encode(priors, gts, stds):
    pw, ph = priors[:, 2] - priors[:, 0], priors[:, 3] - priors[:, 1]
    px, py = priors[:, 0] + pw / 2, priors[:, 1] + ph / 2
    gw, gh = gts[:, 2] - gts[:, 0], gts[:, 3] - gts[:, 1]
    gx, gy = gts[:, 0] + gw / 2, gts[:, 1] + gh / 2
    deltas = torch.stack([(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw),
                          torch.log(gh / ph)], dim=1)
    return deltas / torch.tensor(stds)


def _decode(priors, deltas, stds, shape=(64, 64)):
    d = deltas * torch.tensor(stds)
    limit = abs(math.log(16 / 1000))
    pw, ph = priors[:, 2] - priors[:, 0], priors[:, 3] - priors[:, 1]
    px, py = priors[:, 0] + pw / 2, priors[:, 1] + ph / 2
    cx, cy = px + d[:, 0] * pw, py + d[:, 1] * ph
    w, h = pw * d[:, 2].clamp(-limit, limit).exp(), ph * d[:, 3].clamp(-limit, limit).exp()
    boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, shape[1])
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, shape[0])
    return boxes


def _smooth_l1(diff, beta=1.0):
    diff = diff.abs()
    return torch.where(diff < beta, 0.5 * diff**2 / beta, diff - 0.5 * beta)


def _reference_stage(head, stage, x, proposals, gts):
    """One training stage redone by hand: losses and the next stage's proposals."""
    rois, labels, targets, is_pos, n_gt_of = [], [], [], [], []
    for img, (boxes, (gt_boxes, gt_labels)) in enumerate(zip(proposals, gts)):
        gt_boxes = torch.tensor(gt_boxes)
        candidates = torch.cat([gt_boxes, boxes])  # the sampler adds the gts first
        iou = box_iou(candidates, gt_boxes)
        best, best_gt = iou.max(dim=1)
        pos = best >= IOU_THRS[stage]
        order = torch.cat([torch.nonzero(pos)[:, 0], torch.nonzero(~pos)[:, 0]])
        cand = candidates[order]
        rois.append(torch.cat([torch.full((len(cand), 1), float(img)), cand], dim=1))
        lab = torch.full((len(cand),), NUM_CLASSES)
        lab[:int(pos.sum())] = torch.tensor(gt_labels)[best_gt[order][:int(pos.sum())]]
        labels.append(lab)
        tgt = torch.zeros(len(cand), 4)
        tgt[:int(pos.sum())] = _encode(cand[:int(pos.sum())],
                                       gt_boxes[best_gt[order][:int(pos.sum())]], STDS[stage])
        targets.append(tgt)
        is_pos.append(torch.arange(len(cand)) < int(pos.sum()))
        n_gt_of.append(len(gt_boxes))
    rois, labels = torch.cat(rois), torch.cat(labels)
    targets, is_pos = torch.cat(targets), torch.cat(is_pos)
    feats = head.bbox_roi_extractor[stage](x, rois)
    cls_score, bbox_pred = head.bbox_head[stage](feats)
    loss_cls = F.cross_entropy(cls_score, labels)
    loss_bbox = _smooth_l1(bbox_pred[is_pos] - targets[is_pos]).sum() / len(rois)
    # next proposals: every sampled RoI regressed, the gts (first in each image) dropped
    refined = _decode(rois[:, 1:], bbox_pred.detach(), STDS[stage])
    next_proposals = []
    for img, n_gt in enumerate(n_gt_of):
        mine = refined[rois[:, 0] == img]
        next_proposals.append(mine[n_gt:])
    return dict(loss_cls=WEIGHTS[stage] * loss_cls, loss_bbox=WEIGHTS[stage] * loss_bbox,
                rois=rois, labels=labels), next_proposals


# ---------------------------------------------------------------- training
def test_every_stage_resamples_the_refined_boxes_and_weighs_its_losses():
    head = _cascade()
    x = _feats()
    samples = [_sample(*gt) for gt in GTS]
    rpn_results = [InstanceData(bboxes=p.clone()) for p in PROPOSALS]
    losses = head.loss(x, rpn_results, samples)
    assert set(losses) == {f's{t}.{n}' for t in range(3) for n in ('loss_cls', 'acc',
                                                                      'loss_bbox')}
    proposals = [p.clone() for p in PROPOSALS]
    for stage in range(3):
        expected, next_proposals = _reference_stage(head, stage, x, proposals, GTS)
        for name in ('loss_cls', 'loss_bbox'):
            torch.testing.assert_close(losses[f's{stage}.{name}'], expected[name],
                                       rtol=1e-5, atol=1e-6, msg=f's{stage}.{name}')
        # the next stage reads regressed boxes, not this stage's proposals
        assert not torch.allclose(next_proposals[1], proposals[1][:len(next_proposals[1])])
        proposals = next_proposals
    # the caller's proposals are left alone
    assert torch.equal(rpn_results[0].bboxes, PROPOSALS[0])


def test_later_stages_send_no_gradient_through_the_refinement():
    head = _cascade()
    x = tuple(f.requires_grad_() for f in _feats())
    losses = head.loss(x, [InstanceData(bboxes=p.clone()) for p in PROPOSALS],
                       [_sample(*gt) for gt in GTS])
    (losses['s2.loss_cls'] + losses['s2.loss_bbox']).backward()
    assert head.bbox_head[0].fc_reg.weight.grad is None
    assert head.bbox_head[1].fc_reg.weight.grad is None
    assert head.bbox_head[2].fc_reg.weight.grad.abs().sum() > 0


def test_stage_loss_weights_scale_losses_not_accuracy():
    x, samples = _feats(), [_sample(*gt) for gt in GTS]
    rpn = [InstanceData(bboxes=p.clone()) for p in PROPOSALS]
    base = _cascade().loss(x, rpn, samples)
    doubled = _cascade(stage_loss_weights=[2, 3, 4]).loss(x, rpn, samples)
    for stage, (w0, w1) in enumerate(zip(WEIGHTS, [2, 3, 4])):
        torch.testing.assert_close(doubled[f's{stage}.loss_cls'],
                                   base[f's{stage}.loss_cls'] * w1 / w0)
        assert doubled[f's{stage}.acc'] == base[f's{stage}.acc']


def test_mask_heads_train_on_every_stage():
    head = _cascade(with_mask=True)
    assert len(head.mask_head) == 3 and not head.share_roi_extractor
    losses = head.loss(_feats(), [InstanceData(bboxes=p.clone()) for p in PROPOSALS],
                       [_sample(*gt) for gt in GTS])
    for stage in range(3):
        assert losses[f's{stage}.loss_mask'] > 0
    # image without gt and no proposals: the stages still run and give finite losses
    empty = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                        scale_factor=(1., 1.)))
    empty.gt_instances = InstanceData(bboxes=torch.zeros((0, 4)),
                                      labels=torch.zeros((0,), dtype=torch.long),
                                      masks=BitmapMasks(np.zeros((0, 64, 64), np.uint8), 64, 64))
    losses = head.loss(_feats(), [InstanceData(bboxes=PROPOSALS[0].clone()),
                                  InstanceData(bboxes=torch.zeros((0, 4)))],
                       [_sample(*GTS[0]), empty])
    assert all(torch.isfinite(v) for v in losses.values())


# ---------------------------------------------------------------- inference
def test_prediction_averages_the_stage_logits_and_uses_the_last_stage_boxes():
    head = _cascade().eval()
    x = _feats()
    metas = [dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1., 1.))] * 2
    rpn = [InstanceData(bboxes=p.clone()) for p in PROPOSALS]
    with torch.no_grad():
        raw = head.predict_bbox(x, metas, rpn, rcnn_test_cfg=None)
        for img, proposals in enumerate(PROPOSALS):
            boxes, logits = proposals, []
            for stage in range(3):
                rois = torch.cat([torch.full((len(boxes), 1), 0.), boxes], dim=1)
                cls, reg = head.bbox_head[stage](head.bbox_roi_extractor[stage](
                    tuple(f[img:img + 1] for f in x), rois))
                logits.append(cls)
                boxes = _decode(boxes, reg, STDS[stage])
            torch.testing.assert_close(raw[img].scores, F.softmax(sum(logits) / 3, dim=1))
            torch.testing.assert_close(raw[img].bboxes, boxes)
            # averaging logits is not averaging probabilities: the test would notice
            assert not torch.allclose(raw[img].scores,
                                      sum(F.softmax(lg, dim=1) for lg in logits) / 3)
    # with test_cfg: per-class NMS of those boxes and scores
    with torch.no_grad():
        final = head.predict(x, rpn, [_sample(*gt) for gt in GTS])
    for img in range(2):
        res = final[img]
        assert res.bboxes.shape[1] == 4 and (res.scores > 0.05).all()
        for box, score, label in zip(res.bboxes, res.scores, res.labels):
            match = (raw[img].bboxes == box).all(dim=1)
            assert match.any()
            torch.testing.assert_close(raw[img].scores[match, label].max(), score)


def test_masks_average_the_stage_heads():
    head = _cascade(with_mask=True).eval()
    x = _feats()
    samples = [_sample(*gt) for gt in GTS]
    with torch.no_grad():
        cls_scores, bbox_preds, masks = head.forward(
            x, [InstanceData(bboxes=p.clone()) for p in PROPOSALS], samples)
        # the rois the masks were computed on: the last stage's input, as MMDetection
        _, _, last_rois = _refined_rois(head, x)
        for img in range(2):
            rois = last_rois[img]
            probs = [head.mask_head[t](head.mask_roi_extractor[t](x, rois)).sigmoid()
                     for t in range(3)]
            torch.testing.assert_close(masks[img], sum(probs) / 3)
    assert len(cls_scores) == len(bbox_preds) == 2 and cls_scores[0].shape == (6, 4)
    with torch.no_grad():
        preds = head.predict(x, [InstanceData(bboxes=p.clone()) for p in PROPOSALS], samples)
    for res in preds:
        assert res.masks.dtype == torch.bool and res.masks.shape == (len(res), 64, 64)


def test_equal_mask_heads_give_the_one_head_masks():
    """What a Detectron2 cascade (one mask head, copied to every stage) relies on: the
    cascade's masks are those of a single mask head on the final boxes."""
    head = _cascade(with_mask=True).eval()
    for t in (1, 2):
        head.mask_head[t].load_state_dict(head.mask_head[0].state_dict())
    x = _feats()
    samples = [_sample(*gt) for gt in GTS]
    rpn = [InstanceData(bboxes=p.clone()) for p in PROPOSALS]
    metas = [s.metainfo for s in samples]
    with torch.no_grad():
        cascade = head.predict(x, rpn, samples)
        dets = head.predict_bbox(x, metas, rpn, head.test_cfg)
        rois = torch.cat([torch.cat([torch.full((len(d), 1), float(i)), d.bboxes], dim=1)
                          for i, d in enumerate(dets)])
        logits = head.mask_head[0](head.mask_roi_extractor[0](x, rois))
        single = head.mask_head[0].predict_by_feat(logits.split([len(d) for d in dets]), dets,
                                                   metas, head.test_cfg)
    assert sum(len(r) for r in single) > 0
    for a, b in zip(cascade, single):
        torch.testing.assert_close(a.bboxes, b.bboxes)
        assert torch.equal(a.masks, b.masks)


def _refined_rois(head, x):
    """Per image the RoIs (with batch index) each stage reads at test time."""
    out = [[], [], []]
    for img, proposals in enumerate(PROPOSALS):
        boxes = proposals
        for stage in range(3):
            rois = torch.cat([torch.full((len(boxes), 1), float(img)), boxes], dim=1)
            out[stage].append(rois)
            _, reg = head.bbox_head[stage](head.bbox_roi_extractor[stage](x, rois))
            boxes = _decode(boxes, reg, STDS[stage])
    return out


def test_no_proposals_give_empty_detections():
    head = _cascade(with_mask=True).eval()
    empty = [InstanceData(bboxes=torch.zeros((0, 4))) for _ in range(2)]
    with torch.no_grad():
        preds = head.predict(_feats(), empty, [_sample(*gt) for gt in GTS])
    for res in preds:
        assert res.bboxes.shape == (0, 4) and res.labels.dtype == torch.long
        assert res.masks.shape == (0, 64, 64)


# ---------------------------------------------------------------- configuration
def test_class_rows_cover_every_stage_and_mask_head():
    from mmft.structures.class_rows import find_class_rows
    head = _cascade(with_mask=True)
    rows = find_class_rows(head)
    assert sorted(rows) == sorted(
        [f'bbox_head.{t}.fc_cls.{p}' for t in range(3) for p in ('weight', 'bias')]
        + [f'mask_head.{t}.conv_logits.{p}' for t in range(3) for p in ('weight', 'bias')])
    assert rows['bbox_head.1.fc_cls.weight'].background == 'last'
    specific = _cascade(bbox_head=dict(type='Shared2FCBBoxHead', in_channels=C,
                                       fc_out_channels=16, num_classes=NUM_CLASSES,
                                       reg_class_agnostic=False))
    assert 'bbox_head.2.fc_reg.weight' in find_class_rows(specific)


@pytest.mark.parametrize('overrides, match', [
    (dict(stage_loss_weights=[1, 0.5]), 'stage_loss_weights'),
    (dict(bbox_head=[dict(type='BBoxHead')] * 2), 'bbox_head has 2 entries'),
    (dict(train_cfg=dict(assigner=None)), 'list of 3 stage configs'),
    (dict(shared_head=dict(type='ResLayer')), 'shared_head'),
])
def test_bad_configs_are_named(overrides, match):
    with pytest.raises((ValueError, NotImplementedError), match=match):
        _cascade(**overrides)
