"""RTMDet-Ins as MMDetection lays it out (rtmdet-ins_tiny's state_dict keys and shapes,
written here from MMDetection 3.3's RTMDetInsSepBNHead / MaskFeatModule source), the tower
sharing, the dynamic mask convs against an independent grouped-conv computation, a train
step / predict with masks, class rows, and fine-tuning loads (shapes source -> target
classes; a box RTMDet checkpoint into RTMDet-Ins).
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData

from mmft.datasets.synthetic import SHAPES_SYNONYMS, SOURCE_CLASSES, TARGET_CLASSES
from mmft.finetune.config import FinetuneConfig
from mmft.finetune.load import load_pretrained
from mmft.finetune.patterns import model_presets
from mmft.structures import DetDataSample
from mmft.structures.class_rows import find_class_rows
from mmft.structures.masks import BitmapMasks
from tests.test_models.test_detectors.test_rtmdet import (_conv_bn, build, rtmdet_cfg,
                                                          rtmdet_tiny_keys, tiny_rtmdet)


def rtmdet_ins_cfg(num_classes=80, deepen=0.167, widen=0.375, neck_in=(96, 192, 384),
                   width=96, norm='SyncBN'):
    """MMDetection's rtmdet-ins_tiny_8xb32-300e_coco.py model (its _base_ chain merged:
    rtmdet_l's detector, rtmdet-ins_l's head and test_cfg, tiny's widths)."""
    cfg = rtmdet_cfg(num_classes, deepen, widen, neck_in, width, norm=norm)
    cfg['bbox_head'] = dict(
        type='RTMDetInsSepBNHead', num_classes=num_classes, in_channels=width, stacked_convs=2,
        share_conv=True, pred_kernel_size=1, feat_channels=width,
        act_cfg=dict(type='SiLU', inplace=True), norm_cfg=dict(type=norm, requires_grad=True),
        anchor_generator=dict(type='MlvlPointGenerator', offset=0, strides=[8, 16, 32]),
        bbox_coder=dict(type='DistancePointBBoxCoder'),
        loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        loss_mask=dict(type='DiceLoss', loss_weight=2.0, eps=5e-6, reduction='mean'))
    cfg['test_cfg'] = dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                           nms=dict(type='nms', iou_threshold=0.6), max_per_img=100,
                           mask_thr_binary=0.5)
    return cfg


def tiny_rtmdet_ins(num_classes):
    """The same layout, narrow and BN (for fast CPU tests)."""
    cfg = rtmdet_ins_cfg(num_classes, widen=0.125, neck_in=(32, 64, 128), width=32, norm='BN')
    cfg['test_cfg'].update(score_thr=0.01, max_per_img=50)
    return cfg


# --------------------------------------------------------------------- MMDetection's keys
def rtmdet_ins_tiny_keys(num_classes=80):
    """rtmdet_tiny's backbone and neck; the head: per level the class tower (also listed as
    reg_convs: the same modules), a kernel tower, rtm_cls / rtm_reg / rtm_kernel (169 = 10*8 +
    8*8 + 8*1 weights + 8 + 8 + 1 biases of the three dynamic convs), and the mask feature
    module (fusion 3*96 -> 96, four 3x3 ConvModules, projection to 8 prototypes)."""
    keys = {k: v for k, v in rtmdet_tiny_keys(num_classes).items()
            if not k.startswith('bbox_head.')}
    for lvl in range(3):
        for tower in ('cls_convs', 'reg_convs', 'kernel_convs'):
            for i in range(2):
                _conv_bn(keys, f'bbox_head.{tower}.{lvl}.{i}', 96, 96, 3)
        for name, out in (('rtm_cls', num_classes), ('rtm_reg', 4), ('rtm_kernel', 169)):
            keys[f'bbox_head.{name}.{lvl}.weight'] = (out, 96, 1, 1)
            keys[f'bbox_head.{name}.{lvl}.bias'] = (out,)
    keys['bbox_head.mask_head.fusion_conv.weight'] = (96, 288, 1, 1)
    keys['bbox_head.mask_head.fusion_conv.bias'] = (96,)
    for i in range(4):
        _conv_bn(keys, f'bbox_head.mask_head.stacked_convs.{i}', 96, 96, 3)
    keys['bbox_head.mask_head.projection.weight'] = (8, 96, 1, 1)
    keys['bbox_head.mask_head.projection.bias'] = (8,)
    return keys


def test_rtmdet_ins_tiny_keys_equal_mmdetection():
    model = build(rtmdet_ins_cfg())
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = rtmdet_ins_tiny_keys()
    assert sorted(set(shapes) - set(expected)) == [] and sorted(set(expected) - set(shapes)) == []
    assert shapes == expected
    # MMDetection's model zoo lists RTMDet-Ins-tiny at 5.6M parameters
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(5.6e6, rel=0.02)


def test_towers_as_mmdetection_builds_them():
    head = build(tiny_rtmdet_ins(3)).bbox_head
    for lvl in range(3):
        assert head.reg_convs[lvl] is head.cls_convs[lvl]
        assert head.cls_convs[lvl][1].conv is head.cls_convs[0][1].conv
    assert head.cls_convs[1][0].bn is not head.cls_convs[0][0].bn
    assert head.kernel_convs[1][0].conv is not head.kernel_convs[0][0].conv
    assert len(head.rtm_obj) == 0


def test_init_biases():
    model = build(tiny_rtmdet_ins(5))
    model.init_weights()
    for lvl in range(3):
        assert torch.allclose(model.bbox_head.rtm_cls[lvl].bias, torch.full((5,), -4.59512),
                              atol=1e-4)
        assert torch.equal(model.bbox_head.rtm_reg[lvl].bias, torch.ones(4))
        assert torch.equal(model.bbox_head.rtm_kernel[lvl].bias, torch.zeros(169))


def test_mask_logits_equal_grouped_dynamic_convs():
    """The per-instance 1x1 convs as one grouped conv over instances (MMDetection's way),
    with the relative-coordinate channels built pixel by pixel here."""
    torch.manual_seed(0)
    head = build(tiny_rtmdet_ins(3)).bbox_head
    h, w, k = 5, 6, 3
    feat = torch.randn(8, h, w)
    kernels = torch.randn(k, 169)
    priors = torch.tensor([[8., 16., 8., 8.], [32., 0., 16., 16.], [0., 32., 32., 32.]])
    out = head.mask_logits(feat, kernels, priors)
    coords = torch.zeros(k, 2, h, w)
    for n in range(k):
        for y in range(h):
            for x in range(w):
                coords[n, 0, y, x] = (priors[n, 0] - 8 * x) / (8 * priors[n, 2])
                coords[n, 1, y, x] = (priors[n, 1] - 8 * y) / (8 * priors[n, 3])
    x = torch.cat([coords, feat.expand(k, -1, -1, -1)], 1).reshape(1, -1, h, w)
    sizes = [10 * 8, 8 * 8, 8, 8, 8, 1]
    p = kernels.split(sizes, 1)
    x = F.relu(F.conv2d(x, p[0].reshape(k * 8, 10, 1, 1), p[3].reshape(-1), groups=k))
    x = F.relu(F.conv2d(x, p[1].reshape(k * 8, 8, 1, 1), p[4].reshape(-1), groups=k))
    x = F.conv2d(x, p[2].reshape(k, 8, 1, 1), p[5].reshape(-1), groups=k)
    assert torch.allclose(out, x.reshape(k, h, w), atol=1e-5)
    assert head.mask_logits(feat, kernels[:0], priors[:0]).shape == (0, h, w)


def test_class_rows_and_preset():
    model = build(rtmdet_ins_cfg())
    rows = find_class_rows(model)
    # only the class convs: kernels and masks are class-agnostic
    assert sorted(rows) == sorted(f'bbox_head.rtm_cls.{i}.{p}' for i in range(3)
                                  for p in ('weight', 'bias'))
    assert rows['bbox_head.rtm_cls.1.bias'].num_rows == 80
    assert model_presets(model)['rtmdet'] == [f'bbox_head.rtm_cls.{i}' for i in range(3)]


def _square(size, box):
    m = np.zeros((size, size), dtype=np.uint8)
    x1, y1, x2, y2 = box
    m[y1:y2, x1:x2] = 1
    return m


def samples(n=2, size=64, pad=None):
    boxes = [(6, 8, 30, 36), (28, 20, 60, 58)]
    out = []
    for i in range(n):
        pad_shape = pad or (size, size)
        s = DetDataSample(metainfo=dict(img_shape=(size, size), pad_shape=pad_shape,
                                        batch_input_shape=pad_shape, ori_shape=(size, size),
                                        scale_factor=(1., 1.)))
        masks = BitmapMasks(np.stack([_square(size, b) for b in boxes]), size, size)
        s.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                                      labels=torch.tensor([1, 2 + i]), masks=masks)
        out.append(s)
    return out


def test_loss_backward_and_predict_with_masks():
    torch.manual_seed(0)
    model = build(tiny_rtmdet_ins(5))
    model.init_weights()
    model.train()
    x = torch.rand(2, 3, 64, 64) * 255
    losses = model.loss(x, samples())
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_mask'}
    assert losses['loss_mask'].ndim == 0 and 0 < losses['loss_mask'] <= 2.0
    total = sum(sum(v) for v in losses.values() if isinstance(v, list)) + losses['loss_mask']
    total.backward()
    head = model.bbox_head
    assert head.rtm_kernel[0].weight.grad.abs().sum() > 0
    assert head.mask_head.projection.weight.grad.abs().sum() > 0
    # gt masks smaller than the padded batch are padded to it
    x_pad = torch.rand(1, 3, 96, 64) * 255
    losses = model.loss(x_pad, samples(1, pad=(96, 64)))
    assert torch.isfinite(losses['loss_mask'])
    # no objects: finite, zero box and mask losses
    empty = samples(1)
    empty[0].gt_instances = InstanceData(bboxes=torch.zeros((0, 4)),
                                         labels=torch.zeros((0,), dtype=torch.long),
                                         masks=BitmapMasks([], 64, 64))
    losses = model.loss(x[:1], empty)
    assert all(torch.isfinite(v) for v in losses['loss_cls'])
    assert sum(losses['loss_bbox']).item() == 0 and losses['loss_mask'].item() == 0
    no_masks = samples(1)
    del no_masks[0].gt_instances.masks
    with pytest.raises(KeyError, match='with_mask=True'):
        model.loss(x[:1], no_masks)

    model.eval()
    with torch.no_grad():
        preds = model.predict(x, samples())
    inst = preds[0].pred_instances
    assert set(inst.keys()) == {'bboxes', 'scores', 'labels', 'masks'}
    assert 0 < len(inst) <= 50
    assert inst.masks.dtype == torch.bool and inst.masks.shape == (len(inst), 64, 64)
    # rescaled: the input was the original 48x40 image resized by 4/3 and 1.6, padded to 64
    meta = dict(img_shape=(64, 64), pad_shape=(64, 64), batch_input_shape=(64, 64),
                ori_shape=(40, 48), scale_factor=(64 / 48, 64 / 40))
    with torch.no_grad():
        pred = model.predict(x[:1], [DetDataSample(metainfo=meta)])[0].pred_instances
    assert pred.masks.shape[1:] == (40, 48)
    assert (pred.bboxes[:, 2] <= 48 + 1e-3).all() and (pred.bboxes[:, 3] <= 40 + 1e-3).all()


def test_empty_prediction_has_empty_masks():
    model = build(tiny_rtmdet_ins(5))
    model.init_weights()
    model.eval()
    model.bbox_head.test_cfg['score_thr'] = 1.1
    with torch.no_grad():
        inst = model.predict(torch.rand(1, 3, 64, 64), samples(1))[0].pred_instances
    assert len(inst) == 0 and inst.masks.shape == (0, 64, 64)
    model.bbox_head.test_cfg.pop('mask_thr_binary')
    with pytest.raises(ValueError, match='mask_thr_binary'):
        model.predict(torch.rand(1, 3, 64, 64), samples(1))


def test_bad_arguments_are_named():
    cfg = tiny_rtmdet_ins(3)
    cfg['bbox_head']['exp_on_reg'] = True
    with pytest.raises(ValueError, match='exp_on_reg'):
        build(cfg)
    cfg = tiny_rtmdet_ins(3)
    cfg['bbox_head']['mask_loss_stride'] = 3
    with pytest.raises(ValueError, match='mask_loss_stride=3'):
        build(cfg)


# target class -> source class: circle, triangle, star by name, box <- square (class_mapping)
SHARED = {0: 0, 1: 2, 2: 3, 3: 1}


def _save(model, path, classes):
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': {'classes': classes}}}, path)


def test_fine_tune_copies_shared_rows_of_every_level(tmp_path):
    torch.manual_seed(0)
    source = build(tiny_rtmdet_ins(len(SOURCE_CLASSES)))
    source.init_weights()
    for p in source.parameters():  # away from the init, so a copy is told from a fresh init
        p.data.add_(torch.randn_like(p) * 0.1)
    _save(source, tmp_path / 'source.pth', SOURCE_CLASSES)
    target = build(tiny_rtmdet_ins(len(TARGET_CLASSES)))
    target.init_weights()
    init = {k: v.clone() for k, v in target.state_dict().items()}
    report = load_pretrained(target, str(tmp_path / 'source.pth'),
                             FinetuneConfig(class_mapping=SHAPES_SYNONYMS),
                             new_classes=TARGET_CLASSES)
    src, out = source.state_dict(), target.state_dict()
    for level in range(3):
        for name in ('weight', 'bias'):
            key = f'bbox_head.rtm_cls.{level}.{name}'
            for new, old in SHARED.items():
                assert torch.equal(out[key][new], src[key][old])
            assert torch.equal(out[key][4], init[key][4])  # pentagon: new, own init
    assert sorted(report.transferred) == sorted(f'bbox_head.rtm_cls.{i}.{p}' for i in range(3)
                                                for p in ('weight', 'bias'))
    assert report.missing == [] and report.skipped_suspicious == []
    for key in out:
        if 'rtm_cls' not in key:
            assert torch.equal(out[key], src[key]), key


def test_box_rtmdet_checkpoint_loads_all_but_the_mask_branch(tmp_path):
    """A plain RTMDet checkpoint (same classes) into RTMDet-Ins: backbone, neck, towers,
    rtm_cls and rtm_reg load; kernel towers, rtm_kernel and the mask feature module are
    reported missing and keep their init. RTMDet-Ins has one tower where RTMDet has a class
    and a box tower: both sets of keys load into it, the box tower's last (state_dict
    order), so the class convs start on box-tower features."""
    torch.manual_seed(0)
    box = build(tiny_rtmdet(len(SOURCE_CLASSES)))
    box.init_weights()
    for p in box.parameters():
        p.data.add_(torch.randn_like(p) * 0.1)
    _save(box, tmp_path / 'box.pth', SOURCE_CLASSES)
    ins = build(tiny_rtmdet_ins(len(SOURCE_CLASSES)))
    ins.init_weights()
    init = {k: v.clone() for k, v in ins.state_dict().items()}
    report = load_pretrained(ins, str(tmp_path / 'box.pth'), FinetuneConfig(),
                             new_classes=SOURCE_CLASSES)
    mask_branch = ('bbox_head.kernel_convs.', 'bbox_head.rtm_kernel.', 'bbox_head.mask_head.')
    assert report.missing and all(k.startswith(mask_branch) for k in report.missing)
    assert {k.split('.')[1] for k in report.missing} == {'kernel_convs', 'rtm_kernel',
                                                         'mask_head'}
    assert report.skipped_suspicious == [] and report.unexpected == []
    src, out = box.state_dict(), ins.state_dict()
    for key in out:
        if key.startswith(mask_branch):
            assert torch.equal(out[key], init[key]), key
        elif not key.startswith('bbox_head.cls_convs.'):
            assert torch.equal(out[key], src[key]), key
    assert torch.equal(out['bbox_head.cls_convs.1.0.bn.weight'],
                       src['bbox_head.reg_convs.1.0.bn.weight'])
    assert report.backbone_fraction == 1.0


def test_predictions_are_what_coco_segm_metric_reads():
    """The top prediction, taken as the image's gt, is found again by CocoMetric: bbox and
    segm mAP 1 (masks bool, in original-image pixels, RLE-encodable)."""
    from mmft.registry import METRICS
    torch.manual_seed(0)
    model = build(tiny_rtmdet_ins(5))
    model.init_weights()
    model.eval()
    model.bbox_head.test_cfg.update(score_thr=0.0, max_per_img=20)
    for conv in model.bbox_head.rtm_kernel:  # masks that vary with the offsets from the prior
        conv.bias.data.normal_(0, 1)
    meta = dict(img_shape=(64, 64), pad_shape=(64, 64), batch_input_shape=(64, 64),
                ori_shape=(40, 48), scale_factor=(64 / 48, 64 / 40))
    with torch.no_grad():
        preds = model.predict(torch.rand(1, 3, 64, 64) * 255,
                              [DetDataSample(metainfo=dict(meta, img_id=0))])
    metric = METRICS.build(dict(type='CocoMetric', metric=['bbox', 'segm']))
    metric.dataset_meta = dict(classes=tuple('abcde'))
    for sample in preds:
        inst = sample.pred_instances
        assert inst.masks[0].any()
        sample.gt_instances = InstanceData(
            bboxes=inst.bboxes[:1], labels=inst.labels[:1],
            masks=BitmapMasks(inst.masks[:1].numpy().astype(np.uint8), 40, 48))
    metric.process({}, [s.to_dict() for s in preds])
    result = metric.evaluate(1)
    assert result['coco/bbox_mAP'] == pytest.approx(1.0)
    assert result['coco/segm_mAP'] == pytest.approx(1.0)
