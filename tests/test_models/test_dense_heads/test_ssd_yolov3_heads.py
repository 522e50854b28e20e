"""SSDHead and YOLOV3Head losses on hand-worked cases (zero predictions: every
cross-entropy term is log(K)), empty ground truth, and predictions."""
import math

import pytest
import torch
from mmengine.structures import InstanceData

from mmft.models.dense_heads import SSDHead, YOLOV3Head

SSD_TRAIN = dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                               min_pos_iou=0., gt_max_assign_all=False),
                 sampler=dict(type='PseudoSampler'), smoothl1_beta=1., neg_pos_ratio=3)
TEST = dict(nms_pre=100, nms=dict(type='nms', iou_threshold=0.45), min_bbox_size=0,
            score_thr=0.02, conf_thr=0.005, max_per_img=10)
META = dict(img_shape=(32, 32), pad_shape=(32, 32), scale_factor=(1., 1.))


def ssd_head(num_classes=3):
    return SSDHead(num_classes=num_classes, in_channels=(4, ),
                   anchor_generator=dict(type='SSDAnchorGenerator', strides=[16],
                                         ratios=[[3]], min_sizes=[16], max_sizes=[64]),
                   bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_stds=[.1, .1, .2, .2]),
                   train_cfg=SSD_TRAIN, test_cfg=TEST)


def test_ssd_loss_counts_positives_and_three_times_as_many_hard_negatives():
    head = ssd_head()
    cls = torch.zeros(1, 4 * 4, 2, 2)  # 4 anchors x (3 + 1) at 2 x 2 locations
    reg = torch.zeros(1, 4 * 4, 2, 2)
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 16., 16.]]), labels=torch.tensor([1]))
    losses = head.loss_by_feat([cls], [reg], [gt], [META])
    # one positive (the 16 px square anchor of cell (0, 0); the 32 px square and the
    # 1:3 ones overlap the box by 0.25 and 0.41), 3 hardest negatives, / 1
    assert losses['loss_cls'][0].item() == pytest.approx(4 * math.log(4), rel=1e-5)
    assert losses['loss_bbox'][0].item() == pytest.approx(0.0, abs=1e-6)  # exact anchor
    # a logit favouring the right class lowers only the positive's term
    cls.view(1, 4, 4, 2, 2)[0, 0, 1, 0, 0] = 5.0
    better = head.loss_by_feat([cls], [reg], [gt], [META])['loss_cls'][0].item()
    expected = -math.log(math.exp(5) / (math.exp(5) + 3)) + 3 * math.log(4)
    assert better == pytest.approx(expected, rel=1e-5)


def _per_image_ssd_losses(head, cls_scores, bbox_preds, gts, metas):
    """SSD's losses computed one image at a time, straight from the definition (the former
    implementation): cross-entropy of the positives plus the 3P largest negative terms."""
    sizes = [tuple(c.shape[-2:]) for c in cls_scores]
    anchors = torch.cat(head.prior_generator.grid_priors(sizes))
    num_imgs = len(gts)
    targets = [head.get_targets(anchors, sizes, [gt], [meta])
               for gt, meta in zip(gts, metas)]
    avg = float(sum(t[-1] for t in targets))
    cls = torch.cat([c.permute(0, 2, 3, 1).reshape(num_imgs, -1, 4) for c in cls_scores], 1)
    reg = torch.cat([b.permute(0, 2, 3, 1).reshape(num_imgs, -1, 4) for b in bbox_preds], 1)
    out_cls, out_bbox = [], []
    for i, (labels, weights, bbox_targets, bbox_weights, _, _) in enumerate(targets):
        ce = torch.nn.functional.cross_entropy(cls[i], labels, reduction='none') * weights
        pos, neg = labels < 3, labels == 3
        hard = ce[neg].topk(min(3 * int(pos.sum()), int(neg.sum())))[0]
        out_cls.append((ce[pos].sum() + hard.sum()) / avg)
        diff = (reg[i] - bbox_targets).abs()
        out_bbox.append((torch.where(diff < 1, 0.5 * diff ** 2, diff - 0.5) * bbox_weights).sum()
                        / avg)
    return out_cls, out_bbox


def test_ssd_batch_loss_equals_the_per_image_definition_with_its_gradients():
    head = ssd_head()
    torch.manual_seed(0)
    cls = torch.randn(3, 4 * 4, 2, 2, requires_grad=True)
    reg = torch.randn(3, 4 * 4, 2, 2, requires_grad=True)
    gts = [InstanceData(bboxes=torch.tensor([[0., 0., 16., 16.], [10., 12., 30., 31.]]),
                        labels=torch.tensor([1, 2])),
           InstanceData(bboxes=torch.tensor([[4., 2., 20., 18.]]), labels=torch.tensor([0])),
           InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))]
    losses = head.loss_by_feat([cls], [reg], gts, [META] * 3)
    assert [tuple(t.shape) for t in losses['loss_cls']] == [(1,)] * 3
    got = torch.autograd.grad(sum(sum(v) for v in losses.values()), (cls, reg))
    ref_cls, ref_bbox = _per_image_ssd_losses(head, [cls], [reg], gts, [META] * 3)
    for a, b in zip(losses['loss_cls'] + losses['loss_bbox'], ref_cls + ref_bbox):
        torch.testing.assert_close(a.reshape(()), b, rtol=1e-6, atol=1e-7)
    assert ref_cls[0].item() > 0 and ref_bbox[1].item() > 0 and ref_cls[2].item() == 0
    want = torch.autograd.grad(sum(ref_cls) + sum(ref_bbox), (cls, reg))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_ssd_loss_without_ground_truth_is_zero_not_nan():
    head = ssd_head()
    empty = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    losses = head.loss_by_feat([torch.randn(1, 16, 2, 2)], [torch.randn(1, 16, 2, 2)], [empty],
                               [META])
    assert losses['loss_cls'][0].item() == 0 and losses['loss_bbox'][0].item() == 0


def test_ssd_predict_softmax_without_background_and_rescale():
    head = ssd_head()
    cls = torch.full((1, 16, 2, 2), -10.)
    cls.view(1, 4, 4, 2, 2)[0, :, 3] = 0.  # background (last row of each anchor's block)
    cls.view(1, 4, 4, 2, 2)[0, 0, 2, 1, 1] = 10.  # anchor 0 of cell (1, 1): class 2
    results = head.predict_by_feat([cls], [torch.zeros(1, 16, 2, 2)],
                                   [dict(META, scale_factor=(2., 2.))], rescale=True)[0]
    assert results.labels.tolist() == [2] and results.scores[0] > 0.99
    # anchor 0 of cell (1, 1): 16 px square at (24, 24), halved by the rescale
    torch.testing.assert_close(results.bboxes, torch.tensor([[8., 8., 16., 16.]]))


def yolo_head(num_classes=4):
    return YOLOV3Head(num_classes=num_classes, in_channels=[4], out_channels=[8],
                      anchor_generator=dict(type='YOLOAnchorGenerator', strides=[32],
                                            base_sizes=[[(32, 32), (64, 64), (16, 16)]]),
                      featmap_strides=[32],
                      loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='sum'),
                      loss_conf=dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='sum'),
                      loss_xy=dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='sum'),
                      loss_wh=dict(type='MSELoss', reduction='sum'),
                      train_cfg=dict(assigner=dict(type='GridAssigner', pos_iou_thr=0.5,
                                                   neg_iou_thr=0.5, min_pos_iou=0)),
                      test_cfg=TEST)


def test_yolov3_losses_on_a_hand_worked_case():
    head = yolo_head()
    pred = torch.zeros(1, 3 * 9, 2, 2)
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 32., 32.]]), labels=torch.tensor([2]))
    losses = head.loss_by_feat([pred], [gt], [META])
    log2 = math.log(2)
    # anchor 0 of cell (0, 0) is the box: positive; the 11 others overlap <= 0.25: negative
    assert losses['loss_conf'][0].item() == pytest.approx(12 * log2, rel=1e-5)
    assert losses['loss_cls'][0].item() == pytest.approx(4 * log2, rel=1e-5)
    assert losses['loss_xy'][0].item() == pytest.approx(2 * log2, rel=1e-5)  # targets 0.5
    assert losses['loss_wh'][0].item() == pytest.approx(0.0, abs=1e-6)  # log(32 / 32)
    empty = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    none = head.loss_by_feat([pred], [empty], [META])
    assert none['loss_conf'][0].item() == pytest.approx(12 * log2, rel=1e-5)
    assert none['loss_cls'][0].item() == 0 and none['loss_xy'][0].item() == 0


def test_yolov3_predict_multiplies_objectness_and_decodes():
    head = yolo_head()
    pred = torch.full((1, 3, 9, 2, 2), -10.)
    pred[0, 0, :2] = 0.  # centre offsets sigmoid(0) = 0.5: the anchor's own centre
    pred[0, 0, 2:4] = 0.  # sizes exp(0): the anchor's
    pred[0, 0, 4, 1, 0] = 10.  # objectness of anchor 0 at cell (row 1, col 0)
    pred[0, 0, 5 + 3, 1, 0] = 0.  # class 3 at 0.5
    results = head.predict_by_feat([pred.view(1, 27, 2, 2)], [META])[0]
    assert results.labels.tolist() == [3]
    assert results.scores[0].item() == pytest.approx(0.5 * torch.sigmoid(torch.tensor(10.)).item())
    torch.testing.assert_close(results.bboxes, torch.tensor([[0., 32., 32., 64.]]))


def test_heads_declare_their_class_rows():
    ssd_rows = ssd_head(3).class_rows()['cls_convs.0.0.weight']
    assert (ssd_rows.num_rows, ssd_rows.groups, ssd_rows.background) == (16, 4, 'last')
    yolo_rows = yolo_head(4).class_rows()['convs_pred.0.bias']
    assert (yolo_rows.num_rows, yolo_rows.prefix, yolo_rows.groups) == (27, 5, 3)
    assert SSDHead.finetune_preset == 'ssd'
