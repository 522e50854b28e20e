"""YOLOX as MMDetection lays it out (yolox_s's state_dict keys and shapes, written here from
MMDetection 3.3's CSPDarknet / YOLOXPAFPN / YOLOXHead source), the Focus stem, the
class-row declarations and preset, the decoding / L1 targets, a train step with and
without the L1 loss, predict, and a fine-tuning load from the shapes source classes to the
target classes.
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


def yolox_cfg(num_classes=80, deepen=0.33, widen=0.5, neck_in=(128, 256, 512), width=128,
              num_csp_blocks=1):
    """MMDetection's yolox_s_8xb8-300e_coco.py model (multi-scale batch augment left out)."""
    bn = dict(type='BN', momentum=0.03, eps=0.001)
    return dict(
        type='YOLOX',
        data_preprocessor=dict(type='DetDataPreprocessor', pad_size_divisor=32),
        backbone=dict(type='CSPDarknet', deepen_factor=deepen, widen_factor=widen,
                      out_indices=(2, 3, 4), use_depthwise=False, spp_kernal_sizes=(5, 9, 13),
                      norm_cfg=bn, act_cfg=dict(type='Swish')),
        neck=dict(type='YOLOXPAFPN', in_channels=list(neck_in), out_channels=width,
                  num_csp_blocks=num_csp_blocks, use_depthwise=False,
                  upsample_cfg=dict(scale_factor=2, mode='nearest'), norm_cfg=bn,
                  act_cfg=dict(type='Swish')),
        bbox_head=dict(
            type='YOLOXHead', num_classes=num_classes, in_channels=width, feat_channels=width,
            stacked_convs=2, strides=(8, 16, 32), use_depthwise=False, norm_cfg=bn,
            act_cfg=dict(type='Swish'),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='sum',
                          loss_weight=1.0),
            loss_bbox=dict(type='IoULoss', mode='square', eps=1e-16, reduction='sum',
                           loss_weight=5.0),
            loss_obj=dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='sum',
                          loss_weight=1.0),
            loss_l1=dict(type='L1Loss', reduction='sum', loss_weight=1.0)),
        train_cfg=dict(assigner=dict(type='SimOTAAssigner', center_radius=2.5)),
        test_cfg=dict(score_thr=0.01, nms=dict(type='nms', iou_threshold=0.65)))


def tiny_yolox(num_classes):
    """The same layout, narrow (for fast CPU tests)."""
    return yolox_cfg(num_classes, deepen=0.33, widen=0.125, neck_in=(32, 64, 128), width=32)


def build(cfg):
    with DefaultScope.overwrite_default_scope('mmft'):
        return MODELS.build(cfg)


# --------------------------------------------------------------------- MMDetection's keys
def _conv_bn(keys, path, out, cin, k, groups=1):
    keys[f'{path}.conv.weight'] = (out, cin // groups, k, k)
    for buf in ('weight', 'bias', 'running_mean', 'running_var'):
        keys[f'{path}.bn.{buf}'] = (out,)
    keys[f'{path}.bn.num_batches_tracked'] = ()


def _csp_layer(keys, path, cin, cout, blocks):
    """CSPLayer of DarknetBottlenecks (1x1 then 3x3, hidden = mid), no attention."""
    mid = cout // 2
    _conv_bn(keys, f'{path}.main_conv', mid, cin, 1)
    _conv_bn(keys, f'{path}.short_conv', mid, cin, 1)
    _conv_bn(keys, f'{path}.final_conv', cout, 2 * mid, 1)
    for b in range(blocks):
        _conv_bn(keys, f'{path}.blocks.{b}.conv1', mid, mid, 1)
        _conv_bn(keys, f'{path}.blocks.{b}.conv2', mid, mid, 3)


def yolox_s_keys(num_classes=80):
    """CSPDarknet(0.33, 0.5): Focus stem 12 -> 32, stages 64/128/256/512 with 1/3/3/1
    blocks (P5 table 3/9/9/3 * 0.33 rounded), SPP in stage 4; YOLOXPAFPN(128, 256, 512 ->
    128, 1 block, 1x1 out convs); YOLOXHead with 2 stacked 3x3 convs per tower and level."""
    keys = {}
    _conv_bn(keys, 'backbone.stem.conv', 32, 12, 3)
    for s, (cin, cout, blocks) in enumerate([(32, 64, 1), (64, 128, 3), (128, 256, 3),
                                             (256, 512, 1)], start=1):
        _conv_bn(keys, f'backbone.stage{s}.0', cout, cin, 3)
        csp = 1
        if s == 4:
            _conv_bn(keys, 'backbone.stage4.1.conv1', 256, 512, 1)
            _conv_bn(keys, 'backbone.stage4.1.conv2', 512, 256 * 4, 1)
            csp = 2
        _csp_layer(keys, f'backbone.stage{s}.{csp}', cout, cout, blocks)
    _conv_bn(keys, 'neck.reduce_layers.0', 256, 512, 1)
    _conv_bn(keys, 'neck.reduce_layers.1', 128, 256, 1)
    _csp_layer(keys, 'neck.top_down_blocks.0', 512, 256, 1)
    _csp_layer(keys, 'neck.top_down_blocks.1', 256, 128, 1)
    _conv_bn(keys, 'neck.downsamples.0', 128, 128, 3)
    _conv_bn(keys, 'neck.downsamples.1', 256, 256, 3)
    _csp_layer(keys, 'neck.bottom_up_blocks.0', 256, 256, 1)
    _csp_layer(keys, 'neck.bottom_up_blocks.1', 512, 512, 1)
    for i, c in enumerate([128, 256, 512]):
        _conv_bn(keys, f'neck.out_convs.{i}', 128, c, 1)
    for lvl in range(3):
        for tower in ('multi_level_cls_convs', 'multi_level_reg_convs'):
            for i in range(2):
                _conv_bn(keys, f'bbox_head.{tower}.{lvl}.{i}', 128, 128, 3)
        for name, out in (('cls', num_classes), ('reg', 4), ('obj', 1)):
            keys[f'bbox_head.multi_level_conv_{name}.{lvl}.weight'] = (out, 128, 1, 1)
            keys[f'bbox_head.multi_level_conv_{name}.{lvl}.bias'] = (out,)
    return keys


def test_yolox_s_keys_equal_mmdetection():
    model = build(yolox_cfg())
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = yolox_s_keys()
    assert sorted(set(shapes) - set(expected)) == [] and sorted(set(expected) - set(shapes)) == []
    assert shapes == expected
    # MMDetection's model zoo lists YOLOX-s at 9.0M parameters
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(8.97e6, rel=0.005)


@pytest.mark.parametrize('deepen, widen, blocks, stem', [(0.33, 0.375, (1, 3, 3, 1), 24),
                                                          (0.67, 0.75, (2, 6, 6, 2), 48)])
def test_csp_darknet_widths_and_depths(deepen, widen, blocks, stem):
    """yolox_tiny / yolox_m: widths int(c * widen), blocks max(round(n * deepen), 1)."""
    net = build(dict(type='CSPDarknet', deepen_factor=deepen, widen_factor=widen))
    assert net.stem.conv.conv.weight.shape == (stem, 12, 3, 3)
    csp = [net.stage1[1], net.stage2[1], net.stage3[1], net.stage4[2]]
    assert tuple(len(layer.blocks) for layer in csp) == blocks
    outs = net(torch.rand(1, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(int(256 * widen), 8, 8),
                                                  (int(512 * widen), 4, 4),
                                                  (int(1024 * widen), 2, 2)]


def test_focus_stacks_pixel_parities_in_mmdetection_order():
    from mmft.models.backbones.csp_darknet import Focus
    focus = Focus(1, 4, kernel_size=1, norm_cfg=None, act_cfg=None)
    # an identity conv over the 4 stacked sub-images shows their order
    focus.conv.conv.weight.data = torch.eye(4).view(4, 4, 1, 1)
    focus.conv.conv.bias.data.zero_()
    x = torch.arange(16.).view(1, 1, 4, 4)
    out = focus(x)
    # top-left, bottom-left, top-right, bottom-right pixels of each 2x2 cell
    assert out[0, :, 0, 0].tolist() == [0., 4., 1., 5.]
    assert out[0, :, 1, 1].tolist() == [10., 14., 11., 15.]


def test_csp_darknet_frozen_stages_and_bad_arguments():
    net = build(dict(type='CSPDarknet', deepen_factor=0.33, widen_factor=0.125,
                     frozen_stages=1))
    net.train()
    assert not any(p.requires_grad for p in net.stem.parameters())
    assert not any(p.requires_grad for p in net.stage1.parameters())
    assert not net.stage1[0].bn.training and net.stage2[0].bn.training
    assert all(p.requires_grad for p in net.stage2.parameters())
    with pytest.raises(ValueError, match='CSPDarknet frozen_stages'):
        build(dict(type='CSPDarknet', frozen_stages=7))
    with pytest.raises(ValueError, match='CSPDarknet arch'):
        build(dict(type='CSPDarknet', arch='P7'))


def test_depthwise_variant_builds_and_runs():
    cfg = tiny_yolox(3)
    for part in ('backbone', 'neck', 'bbox_head'):
        cfg[part]['use_depthwise'] = True
    model = build(cfg)
    assert hasattr(model.backbone.stage1[0], 'depthwise_conv')
    assert hasattr(model.bbox_head.multi_level_cls_convs[0][0], 'pointwise_conv')
    # YOLOXPAFPN's output convs stay plain 1x1 convs
    assert model.neck.out_convs[0].conv.kernel_size == (1, 1)
    cls, reg, obj = model.bbox_head(model.neck(model.backbone(torch.rand(1, 3, 64, 64))))
    assert [tuple(c.shape) for c in cls] == [(1, 3, 8, 8), (1, 3, 4, 4), (1, 3, 2, 2)]


def test_dcn_on_last_conv_uses_a_modulated_deformable_conv():
    head = build(dict(type='YOLOXHead', num_classes=3, in_channels=8, feat_channels=8,
                      dcn_on_last_conv=True))
    for tower in (head.multi_level_cls_convs[2], head.multi_level_reg_convs[0]):
        assert type(tower[0].conv).__name__ == 'Conv2d'
        assert type(tower[1].conv).__name__ == 'ModulatedDeformConv2dPack'
    cls, reg, obj = head([torch.rand(1, 8, s, s) for s in (8, 4, 2)])
    assert cls[0].shape == (1, 3, 8, 8) and reg[1].shape == (1, 4, 4, 4)


def test_class_rows_and_preset():
    model = build(yolox_cfg())
    rows = find_class_rows(model)
    assert sorted(rows) == sorted(f'bbox_head.multi_level_conv_cls.{i}.{p}' for i in range(3)
                                  for p in ('weight', 'bias'))
    level = rows['bbox_head.multi_level_conv_cls.1.weight']
    assert (level.groups, level.background, level.num_rows) == (1, None, 80)
    assert model_presets(model)['yolox'] == [f'bbox_head.multi_level_conv_cls.{i}'
                                             for i in range(3)]


def test_class_and_objectness_bias_start_at_the_focal_prior():
    model = build(tiny_yolox(5))
    model.init_weights()
    head = model.bbox_head
    for cls, obj, reg in zip(head.multi_level_conv_cls, head.multi_level_conv_obj,
                             head.multi_level_conv_reg):
        assert torch.allclose(cls.bias, torch.full((5,), -4.59512), atol=1e-4)
        assert torch.allclose(obj.bias, torch.full((1,), -4.59512), atol=1e-4)
        assert torch.equal(reg.bias, torch.zeros(4))


def test_decode_and_l1_targets_invert_each_other():
    from mmft.models.dense_heads.yolox_head import YOLOXHead
    priors = torch.tensor([[16., 8., 8., 8.], [32., 32., 16., 16.]])
    raw = torch.tensor([[0.5, 0.25, 0.0, 1.0], [-0.5, 1.0, 0.5, -0.5]])
    boxes = YOLOXHead._bbox_decode(priors, raw)
    # centre = corner + d * stride, size = exp(log) * stride
    w1, h1 = 8., 8. * torch.e
    assert torch.allclose(boxes[0], torch.tensor([20. - w1 / 2, 10. - h1 / 2, 20. + w1 / 2,
                                                  10. + h1 / 2]))
    assert torch.allclose(YOLOXHead._get_l1_target(boxes, priors), raw, atol=1e-5)


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


def test_loss_backward_l1_switch_and_predict():
    torch.manual_seed(0)
    model = build(tiny_yolox(5))
    model.init_weights()
    model.train()
    x = torch.rand(2, 3, 64, 64) * 255
    losses = model.loss(x, _samples())
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_obj'}
    total = sum(losses.values())
    assert torch.isfinite(total) and losses['loss_bbox'] > 0 and losses['loss_cls'] > 0
    total.backward()
    # the class rows get gradient through the positives (on whichever levels they are)
    assert sum(c.weight.grad.abs().sum() for c in model.bbox_head.multi_level_conv_cls) > 0
    assert model.bbox_head.multi_level_conv_obj[0].weight.grad.abs().sum() > 0
    model.bbox_head.use_l1 = True
    losses = model.loss(x, _samples())
    assert 'loss_l1' in losses and losses['loss_l1'] > 0
    # an image without objects: only the objectness loss is non-zero
    empty = _samples(1)
    empty[0].gt_instances = InstanceData(bboxes=torch.zeros((0, 4)),
                                         labels=torch.zeros((0,), dtype=torch.long))
    losses = model.loss(x[:1], empty)
    assert losses['loss_obj'] > 0
    assert losses['loss_cls'].item() == 0 and losses['loss_bbox'].item() == 0
    assert losses['loss_l1'].item() == 0
    model.eval()
    # untrained scores are about 0.01 * 0.01: below yolox_s's 0.01 threshold
    with torch.no_grad():
        assert len(model.predict(x, _samples())[0].pred_instances) == 0
    model.bbox_head.test_cfg = dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.65),
                                    max_per_img=20)
    with torch.no_grad():
        inst = model.predict(x, _samples())[0].pred_instances
    assert inst.bboxes.shape == (20, 4)
    assert (inst.scores[:-1] >= inst.scores[1:]).all()


def test_predict_scores_are_class_times_objectness():
    model = build(tiny_yolox(2))
    model.init_weights()
    head = model.bbox_head
    feats = [torch.zeros(1, 32, s, s) for s in (8, 4, 2)]
    with torch.no_grad():
        for conv in list(head.multi_level_conv_cls) + list(head.multi_level_conv_obj) \
                + list(head.multi_level_conv_reg):
            conv.weight.zero_()
            conv.bias.zero_()
        head.multi_level_conv_cls[2].bias.copy_(torch.tensor([2., -1.]))
        head.multi_level_conv_obj[2].bias.fill_(1.)
    cls, reg, obj = head(feats)
    meta = dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1., 1.))
    cfg = dict(score_thr=0.6, nms=dict(type='nms', iou_threshold=0.65))
    result = head.predict_by_feat(cls, reg, obj, batch_img_metas=[meta], cfg=cfg)[0]
    # only the 4 stride-32 cells pass (0.881 * 0.731 = 0.644); boxes 32x32 at the corners
    assert len(result) == 4 and (result.labels == 0).all()
    assert torch.allclose(result.scores, torch.full((4,), torch.tensor(2.).sigmoid().item()
                                                     * torch.tensor(1.).sigmoid().item()))
    assert sorted(result.bboxes[:, 0].tolist()) == [-16., -16., 16., 16.]


# target class -> source class: circle, triangle, star by name, box <- square (class_mapping)
SHARED = {0: 0, 1: 2, 2: 3, 3: 1}


def test_fine_tune_copies_shared_rows_of_every_level(tmp_path):
    torch.manual_seed(0)
    source = build(tiny_yolox(len(SOURCE_CLASSES)))
    source.init_weights()
    with torch.no_grad():  # trained-looking class rows, so a copy is told from the init
        for conv in source.bbox_head.multi_level_conv_cls:
            conv.bias.normal_()
    path = tmp_path / 'source.pth'
    torch.save({'state_dict': source.state_dict(),
                'meta': {'dataset_meta': {'classes': SOURCE_CLASSES}}}, path)
    target = build(tiny_yolox(len(TARGET_CLASSES)))
    target.init_weights()
    init = {k: v.clone() for k, v in target.state_dict().items()}
    report = load_pretrained(target, str(path), FinetuneConfig(class_mapping=SHAPES_SYNONYMS),
                             new_classes=TARGET_CLASSES)
    src, out = source.state_dict(), target.state_dict()
    for level in range(3):
        for name in ('weight', 'bias'):
            key = f'bbox_head.multi_level_conv_cls.{level}.{name}'
            assert out[key].shape[0] == len(TARGET_CLASSES)
            for new, old in SHARED.items():
                assert torch.equal(out[key][new], src[key][old])
            # pentagon is new: keeps the head's own init (the focal prior bias)
            assert torch.equal(out[key][4], init[key][4])
    assert len(report.transferred) == 6
    for key in out:
        if 'multi_level_conv_cls' not in key:
            assert torch.equal(out[key], src[key]), key


def test_losses_equal_hand_computed_values_on_a_one_level_case():
    """One stride-32 level on a 64 px image (2x2 priors), outputs fixed by the biases: every
    prior predicts a 35.4 x 32 box centred half a cell from its corner. The gt (0, 0, 32, 32)
    has only prior 0 inside both its box and centre square, so prior 0 is the one positive."""
    import math

    head = build(dict(type='YOLOXHead', num_classes=2, in_channels=4, feat_channels=4,
                      strides=(32,), train_cfg=dict(assigner=dict(type='SimOTAAssigner'))))
    head.init_weights()
    with torch.no_grad():
        for conv in (head.multi_level_conv_cls[0], head.multi_level_conv_reg[0],
                     head.multi_level_conv_obj[0]):
            conv.weight.zero_()
        head.multi_level_conv_cls[0].bias.copy_(torch.tensor([0.3, -0.2]))
        head.multi_level_conv_reg[0].bias.copy_(torch.tensor([0.5, 0.5, 0.1, 0.0]))
        head.multi_level_conv_obj[0].bias.fill_(-1.0)
    head.use_l1 = True
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 32., 32.]]), labels=torch.tensor([0]))
    losses = head.loss_by_feat(*head([torch.rand(1, 4, 2, 2)]), [gt],
                               [dict(img_shape=(64, 64), pad_shape=(64, 64))])

    def bce(logit, y):
        p = 1 / (1 + math.exp(-logit))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    w = 32 * math.exp(0.1)
    iou = 32 * 32 / (w * 32)  # the box contains the gt
    assert losses['loss_cls'].item() == pytest.approx(bce(0.3, iou) + bce(-0.2, 0), rel=1e-5)
    assert losses['loss_obj'].item() == pytest.approx(bce(-1, 1) + 3 * bce(-1, 0), rel=1e-5)
    assert losses['loss_bbox'].item() == pytest.approx(5 * (1 - iou ** 2), rel=1e-5)
    # L1 target of prior 0 (corner (0, 0)): offset 16 / 32, log(32 / 32)
    assert losses['loss_l1'].item() == pytest.approx(0.1, rel=1e-5)
