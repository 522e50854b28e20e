"""RTMDet as MMDetection lays it out (rtmdet_tiny's state_dict keys and shapes, written
here from MMDetection 3.3's CSPNeXt / CSPNeXtPAFPN / RTMDetSepBNHead source), the shared
convs with per-level BNs, the class-row declarations, a train step / predict, and a
fine-tuning load from the shapes source classes to the target classes.
"""
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from mmft.datasets.synthetic import SHAPES_SYNONYMS, SOURCE_CLASSES, TARGET_CLASSES
from mmft.finetune.config import FinetuneConfig
from mmft.finetune.load import load_pretrained
from mmft.finetune.patterns import model_presets
from mmft.registry import MODELS
from mmft.structures import DetDataSample
from mmft.structures.class_rows import find_class_rows


def rtmdet_cfg(num_classes=80, deepen=0.167, widen=0.375, neck_in=(96, 192, 384), width=96,
               exp_on_reg=False, norm='SyncBN'):
    """MMDetection's rtmdet_tiny_8xb32-300e_coco.py model (its _base_ chain merged)."""
    return dict(
        type='RTMDet',
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[103.53, 116.28, 123.675],
                               std=[57.375, 57.12, 58.395], bgr_to_rgb=False,
                               batch_augments=None),
        backbone=dict(type='CSPNeXt', arch='P5', expand_ratio=0.5, deepen_factor=deepen,
                      widen_factor=widen, channel_attention=True, norm_cfg=dict(type=norm),
                      act_cfg=dict(type='SiLU', inplace=True)),
        neck=dict(type='CSPNeXtPAFPN', in_channels=list(neck_in), out_channels=width,
                  num_csp_blocks=1, expand_ratio=0.5, norm_cfg=dict(type=norm),
                  act_cfg=dict(type='SiLU', inplace=True)),
        bbox_head=dict(type='RTMDetSepBNHead', num_classes=num_classes, in_channels=width,
                       stacked_convs=2, feat_channels=width,
                       anchor_generator=dict(type='MlvlPointGenerator', offset=0,
                                             strides=[8, 16, 32]),
                       bbox_coder=dict(type='DistancePointBBoxCoder'),
                       loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0,
                                     loss_weight=1.0),
                       loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
                       with_objectness=False, exp_on_reg=exp_on_reg, share_conv=True,
                       pred_kernel_size=1, norm_cfg=dict(type=norm),
                       act_cfg=dict(type='SiLU', inplace=True)),
        train_cfg=dict(assigner=dict(type='DynamicSoftLabelAssigner', topk=13),
                       allowed_border=-1, pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=30000, min_bbox_size=0, score_thr=0.001,
                      nms=dict(type='nms', iou_threshold=0.65), max_per_img=300))


def tiny_rtmdet(num_classes):
    """The same layout, narrow and BN (for fast CPU tests)."""
    cfg = rtmdet_cfg(num_classes, deepen=0.167, widen=0.125, neck_in=(32, 64, 128), width=32,
                     norm='BN')
    cfg['test_cfg'] = dict(nms_pre=1000, min_bbox_size=0, score_thr=0.01,
                           nms=dict(type='nms', iou_threshold=0.65), max_per_img=50)
    return cfg


def build(cfg):
    with DefaultScope.overwrite_default_scope('mmft'):
        return MODELS.build(cfg)


# --------------------------------------------------------------------- MMDetection's keys
def _conv_bn(keys, path, out, cin, k, groups=1):
    keys[f'{path}.conv.weight'] = (out, cin // groups, k, k)
    for buf in ('weight', 'bias', 'running_mean', 'running_var'):
        keys[f'{path}.bn.{buf}'] = (out,)
    keys[f'{path}.bn.num_batches_tracked'] = ()


def _cspnext_block(keys, path, c):
    _conv_bn(keys, f'{path}.conv1', c, c, 3)
    _conv_bn(keys, f'{path}.conv2.depthwise_conv', c, c, 5, groups=c)
    _conv_bn(keys, f'{path}.conv2.pointwise_conv', c, c, 1)


def _csp_layer(keys, path, cin, cout, blocks, attention):
    mid = cout // 2
    _conv_bn(keys, f'{path}.main_conv', mid, cin, 1)
    _conv_bn(keys, f'{path}.short_conv', mid, cin, 1)
    _conv_bn(keys, f'{path}.final_conv', cout, 2 * mid, 1)
    for b in range(blocks):
        _cspnext_block(keys, f'{path}.blocks.{b}', mid)
    if attention:
        keys[f'{path}.attention.fc.weight'] = (2 * mid, 2 * mid, 1, 1)
        keys[f'{path}.attention.fc.bias'] = (2 * mid,)


def rtmdet_tiny_keys(num_classes=80):
    """CSPNeXt(0.167, 0.375): stem 12-12-24, stages 48/96/192/384 with 1 block each (P5
    table 3/6/6/3 blocks * 0.167 rounds to 1), SPP in stage 4; PAFPN(96, 192, 384 -> 96);
    RTMDetSepBNHead with 2 stacked convs per tower and level, 1x1 predictors."""
    keys = {}
    _conv_bn(keys, 'backbone.stem.0', 12, 3, 3)
    _conv_bn(keys, 'backbone.stem.1', 12, 12, 3)
    _conv_bn(keys, 'backbone.stem.2', 24, 12, 3)
    for s, (cin, cout) in enumerate([(24, 48), (48, 96), (96, 192), (192, 384)], start=1):
        _conv_bn(keys, f'backbone.stage{s}.0', cout, cin, 3)
        csp = 1
        if s == 4:
            _conv_bn(keys, 'backbone.stage4.1.conv1', cout // 2, cout, 1)
            _conv_bn(keys, 'backbone.stage4.1.conv2', cout, cout // 2 * 4, 1)
            csp = 2
        _csp_layer(keys, f'backbone.stage{s}.{csp}', cout, cout, 1, attention=True)
    _conv_bn(keys, 'neck.reduce_layers.0', 192, 384, 1)
    _conv_bn(keys, 'neck.reduce_layers.1', 96, 192, 1)
    _csp_layer(keys, 'neck.top_down_blocks.0', 384, 192, 1, attention=False)
    _csp_layer(keys, 'neck.top_down_blocks.1', 192, 96, 1, attention=False)
    _conv_bn(keys, 'neck.downsamples.0', 96, 96, 3)
    _conv_bn(keys, 'neck.downsamples.1', 192, 192, 3)
    _csp_layer(keys, 'neck.bottom_up_blocks.0', 192, 192, 1, attention=False)
    _csp_layer(keys, 'neck.bottom_up_blocks.1', 384, 384, 1, attention=False)
    for i, c in enumerate([96, 192, 384]):
        _conv_bn(keys, f'neck.out_convs.{i}', 96, c, 3)
    for lvl in range(3):
        for tower in ('cls_convs', 'reg_convs'):
            for i in range(2):
                _conv_bn(keys, f'bbox_head.{tower}.{lvl}.{i}', 96, 96, 3)
        keys[f'bbox_head.rtm_cls.{lvl}.weight'] = (num_classes, 96, 1, 1)
        keys[f'bbox_head.rtm_cls.{lvl}.bias'] = (num_classes,)
        keys[f'bbox_head.rtm_reg.{lvl}.weight'] = (4, 96, 1, 1)
        keys[f'bbox_head.rtm_reg.{lvl}.bias'] = (4,)
    return keys


def test_rtmdet_tiny_keys_equal_mmdetection():
    model = build(rtmdet_cfg())
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = rtmdet_tiny_keys()
    assert sorted(set(shapes) - set(expected)) == [] and sorted(set(expected) - set(shapes)) == []
    assert shapes == expected
    assert isinstance(model.backbone.stem[0].bn, torch.nn.SyncBatchNorm)
    # MMDetection's model zoo lists RTMDet-tiny at 4.8M parameters
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(4.8e6, rel=0.03)


def test_shared_convs_with_per_level_norms():
    head = build(tiny_rtmdet(3)).bbox_head
    for tower in (head.cls_convs, head.reg_convs):
        for i in range(2):
            assert tower[1][i].conv.weight is tower[0][i].conv.weight
            assert tower[2][i].conv.weight is tower[0][i].conv.weight
            assert tower[1][i].bn is not tower[0][i].bn
    assert head.rtm_cls[1].weight is not head.rtm_cls[0].weight
    cfg = tiny_rtmdet(3)
    cfg['bbox_head']['share_conv'] = False
    head = build(cfg).bbox_head
    assert head.cls_convs[1][0].conv.weight is not head.cls_convs[0][0].conv.weight


def test_class_rows_and_preset():
    model = build(rtmdet_cfg())
    rows = find_class_rows(model)
    assert sorted(rows) == sorted(f'bbox_head.rtm_cls.{i}.{p}' for i in range(3)
                                  for p in ('weight', 'bias'))
    level = rows['bbox_head.rtm_cls.2.weight']
    assert (level.groups, level.background, level.num_rows) == (1, None, 80)
    assert model_presets(model)['rtmdet'] == [f'bbox_head.rtm_cls.{i}' for i in range(3)]


def test_class_bias_starts_at_the_focal_prior():
    model = build(tiny_rtmdet(5))
    model.init_weights()
    for conv in model.bbox_head.rtm_cls:
        assert torch.allclose(conv.bias, torch.full((5,), -4.59512), atol=1e-4)


def _samples(n=2, size=64):
    out = []
    for i in range(n):
        s = DetDataSample(metainfo=dict(img_shape=(size, size), pad_shape=(size, size),
                                        batch_input_shape=(size, size), ori_shape=(size, size),
                                        scale_factor=(1., 1.)))
        s.gt_instances = InstanceData(bboxes=torch.tensor([[6., 8., 30., 36.],
                                                           [28., 20., 60., 58.]]),
                                      labels=torch.tensor([1, 2 + i]))
        out.append(s)
    return out


def test_loss_backward_and_predict():
    torch.manual_seed(0)
    model = build(tiny_rtmdet(5))
    model.init_weights()
    model.train()
    x = torch.rand(2, 3, 64, 64) * 255
    losses = model.loss(x, _samples())
    assert set(losses) == {'loss_cls', 'loss_bbox'} and len(losses['loss_cls']) == 3
    total = sum(sum(v) for v in losses.values())
    assert torch.isfinite(total) and total > 0
    total.backward()
    assert model.bbox_head.rtm_cls[0].weight.grad.abs().sum() > 0
    # an image without objects gives finite class losses and a zero box loss
    empty = _samples(1)
    empty[0].gt_instances = InstanceData(bboxes=torch.zeros((0, 4)),
                                         labels=torch.zeros((0,), dtype=torch.long))
    losses = model.loss(x[:1], empty)
    assert all(torch.isfinite(v) for v in losses['loss_cls'])
    assert sum(losses['loss_bbox']).item() == 0
    model.eval()
    with torch.no_grad():
        preds = model.predict(x, _samples())
    inst = preds[0].pred_instances
    assert inst.bboxes.shape[1] == 4 and len(inst) <= 50
    assert (inst.bboxes >= 0).all() and (inst.bboxes <= 64).all()


# target class -> source class: circle, triangle, star by name, box <- square (class_mapping)
SHARED = {0: 0, 1: 2, 2: 3, 3: 1}


def test_fine_tune_copies_shared_rows_of_every_level(tmp_path):
    torch.manual_seed(0)
    source = build(tiny_rtmdet(len(SOURCE_CLASSES)))
    source.init_weights()
    path = tmp_path / 'source.pth'
    torch.save({'state_dict': source.state_dict(),
                'meta': {'dataset_meta': {'classes': SOURCE_CLASSES}}}, path)
    target = build(tiny_rtmdet(len(TARGET_CLASSES)))
    target.init_weights()
    init = {k: v.clone() for k, v in target.state_dict().items()}
    report = load_pretrained(target, str(path), FinetuneConfig(class_mapping=SHAPES_SYNONYMS),
                             new_classes=TARGET_CLASSES)
    src, out = source.state_dict(), target.state_dict()
    for level in range(3):
        for name in ('weight', 'bias'):
            key = f'bbox_head.rtm_cls.{level}.{name}'
            assert out[key].shape[0] == len(TARGET_CLASSES)
            for new, old in SHARED.items():
                assert torch.equal(out[key][new], src[key][old])
            # pentagon is new: keeps the head's own init (the focal prior bias)
            assert torch.equal(out[key][4], init[key][4])
    assert len(report.transferred) == 6
    for key in out:
        if 'rtm_cls' not in key:
            assert torch.equal(out[key], src[key]), key
