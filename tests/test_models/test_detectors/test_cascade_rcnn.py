"""Cascade (Mask) R-CNN and RPN: MMDetection's config files build and train, keys match."""
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from mmft.registry import MODELS
from tests.test_models.test_detectors.mmdet_cascade_configs import MMDET_CONFIGS
from tests.test_models.test_detectors.test_two_stage import (TRAIN_SCENES, _batch,
                                                             _mmdet_mask_rcnn_r50_fpn_keys,
                                                             _scene)

MODELS_DIR = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', '_base_', 'models')


# -------------------------------------------------------------------- MMDetection's keys
def _mmdet_cascade_keys(with_mask: bool):
    """Key -> shape of MMDetection 3.x's cascade-(mask-)rcnn_r50_fpn_1x_coco checkpoint:
    Mask R-CNN's backbone, neck and RPN, then per stage t ``roi_head.bbox_head.{t}`` with a
    class-agnostic fc_reg (4 rows) and, with masks, ``roi_head.mask_head.{t}``."""
    keys = {k: v for k, v in _mmdet_mask_rcnn_r50_fpn_keys().items()
            if not k.startswith('roi_head.')}
    for t in range(3):
        b = f'roi_head.bbox_head.{t}'
        keys.update({f'{b}.fc_cls.weight': (81, 1024), f'{b}.fc_cls.bias': (81,),
                     f'{b}.fc_reg.weight': (4, 1024), f'{b}.fc_reg.bias': (4,),
                     f'{b}.shared_fcs.0.weight': (1024, 256 * 7 * 7),
                     f'{b}.shared_fcs.0.bias': (1024,),
                     f'{b}.shared_fcs.1.weight': (1024, 1024), f'{b}.shared_fcs.1.bias': (1024,)})
        if with_mask:
            m = f'roi_head.mask_head.{t}'
            keys.update({f'{m}.upsample.weight': (256, 256, 2, 2), f'{m}.upsample.bias': (256,),
                         f'{m}.conv_logits.weight': (80, 256, 1, 1),
                         f'{m}.conv_logits.bias': (80,)})
            for i in range(4):
                keys[f'{m}.convs.{i}.conv.weight'] = (256, 256, 3, 3)
                keys[f'{m}.convs.{i}.conv.bias'] = (256,)
    return keys


def _shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_base_configs_have_exactly_mmdetection_keys_and_shapes():
    expected = _mmdet_cascade_keys(with_mask=True)
    assert len(expected) == 400
    model = MODELS.build(Config.fromfile(osp.join(MODELS_DIR,
                                                  'cascade_mask_rcnn_r50_fpn.py')).model)
    assert type(model).__name__ == 'CascadeRCNN' and model.with_mask
    assert _shapes(model) == expected
    model = MODELS.build(Config.fromfile(osp.join(MODELS_DIR, 'cascade_rcnn_r50_fpn.py')).model)
    assert not model.with_mask and _shapes(model) == _mmdet_cascade_keys(with_mask=False)
    rpn = MODELS.build(Config.fromfile(osp.join(MODELS_DIR, 'rpn_r50_fpn.py')).model)
    assert type(rpn).__name__ == 'RPN'
    # MMDetection's RPN keeps its head as bbox_head
    assert _shapes(rpn) == {
        k.replace('rpn_head.', 'bbox_head.'): v for k, v in expected.items()
        if k.startswith(('backbone.', 'neck.', 'rpn_head.'))}


# -------------------------------------------------------------------- MMDetection's files
@pytest.fixture(scope='module')
def mmdet_tree(tmp_path_factory, request):
    """MMDetection's files under a configs/ tree whose other _base_ files are mmft's."""
    root = tmp_path_factory.mktemp('mmdet_configs')
    repo_configs = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', '_base_')
    for part in ('datasets', 'schedules', 'default_runtime.py'):
        src = osp.join(repo_configs, part)
        (shutil.copytree if osp.isdir(src) else shutil.copy)(src, root / '_base_' / part)
    for path, text in MMDET_CONFIGS.items():
        target = root / path
        os.makedirs(target.parent, exist_ok=True)
        # the one change: MMDetection's runtime says default_scope='mmdet'
        target.write_text(text + ("\ndefault_scope = 'mmft'\n" if '_base_' not in path else ''))
    return root


CASCADE = [p for p in MMDET_CONFIGS if p.startswith('cascade_rcnn/')]
RPN_FILES = [p for p in MMDET_CONFIGS if p.startswith('rpn/')]


@pytest.mark.parametrize('path', CASCADE + RPN_FILES)
def test_mmdetection_configs_build(mmdet_tree, path):
    cfg = Config.fromfile(str(mmdet_tree / path))
    assert cfg.default_scope == 'mmft'
    model = MODELS.build(cfg.model)
    shapes = _shapes(model)
    if path.startswith('rpn/'):
        anchors = cfg.model.rpn_head.anchor_generator
        num_anchors = len(anchors.scales) * len(anchors.ratios)  # 3, or 15 for C4
        assert type(model).__name__ == 'RPN'
        assert shapes['bbox_head.rpn_cls.weight'][0] == num_anchors
        assert model.with_neck == ('c4' not in path)
        assert cfg.val_evaluator.metric == 'proposal_fast'
    else:
        assert type(model).__name__ == 'CascadeRCNN'
        assert model.with_mask == ('mask' in path)
        assert model.roi_head.stage_loss_weights == [1, 0.5, 0.25]
        assert [h.bbox_coder.stds[0] for h in model.roi_head.bbox_head] == [0.1, 0.05, 0.033]
        assert [a.pos_iou_thr for a in model.roi_head.bbox_assigner] == [0.5, 0.6, 0.7]
    depth = 101 if 'r101' in path else 50
    assert sum(k.startswith('backbone.layer3.') and k.endswith('conv1.weight')
               for k in shapes) == {50: 6, 101: 23}[depth]
    if 'caffe' in path:
        assert model.backbone.style == 'caffe' and cfg.model.data_preprocessor.std == [1.] * 3
    if '20e' in path:
        assert cfg.train_cfg.max_epochs == 20 and cfg.param_scheduler[1].milestones == [16, 19]


def _shrunk(cfg):
    """The second step: the same config at ResNet-18 width 16 and small heads, for a CPU."""
    cfg.merge_from_dict({
        'model.backbone': dict(depth=18, base_channels=16, init_cfg=None),
        'model.test_cfg.rpn': dict(nms_pre=200, max_per_img=100)})
    if cfg.model.neck is None:  # C4: the RPN reads the 64-channel stage-3 map
        cfg.merge_from_dict({'model.rpn_head': dict(in_channels=64, feat_channels=32)})
        return cfg
    cfg.merge_from_dict({
        'model.neck': dict(in_channels=[16, 32, 64, 128], out_channels=32),
        'model.rpn_head': dict(in_channels=32, feat_channels=32)})
    if 'roi_head' in cfg.model:
        cfg.merge_from_dict({'model.roi_head.bbox_roi_extractor.out_channels': 32,
                             'model.train_cfg.rpn_proposal': dict(nms_pre=200, max_per_img=100)})
        for head in cfg.model.roi_head.bbox_head:
            head.update(in_channels=32, fc_out_channels=64, num_classes=3)
        for stage in cfg.model.train_cfg.rcnn:
            stage.sampler.num = 64
        if 'mask_head' in cfg.model.roi_head:
            cfg.merge_from_dict({
                'model.roi_head.mask_roi_extractor.out_channels': 32,
                'model.roi_head.mask_head': dict(num_convs=1, in_channels=32,
                                                 conv_out_channels=32, num_classes=3)})
    return cfg


@pytest.mark.parametrize('path', ['cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
                                  'cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py',
                                  'rpn/rpn_r50_fpn_1x_coco.py',
                                  'rpn/rpn_r50-caffe-c4_1x_coco.py'])
def test_mmdetection_configs_train_and_predict(mmdet_tree, path):
    cfg = _shrunk(Config.fromfile(str(mmdet_tree / path)))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    data = _batch(*[_scene(**kwargs) for kwargs in TRAIN_SCENES])
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    model.train()
    log = {k: float(v.detach()) for k, v in model.train_step(data, optim).items()}
    assert all(np.isfinite(v) for v in log.values())
    if path.startswith('rpn/'):
        assert set(log) == {'loss', 'loss_rpn_cls', 'loss_rpn_bbox'}
    else:
        names = ['loss_cls', 'acc', 'loss_bbox'] + (['loss_mask'] if 'mask' in path else [])
        assert set(log) == {'loss', 'loss_rpn_cls', 'loss_rpn_bbox'} | {
            f's{t}.{n}' for t in range(3) for n in names}
    model.eval()
    with torch.no_grad():
        preds = model.test_step(data)
    for pred, sample in zip(preds, data['data_samples']):
        res = pred.pred_instances
        h, w = sample.ori_shape
        assert (res.bboxes[:, 2] <= w + 1e-4).all() and (res.bboxes[:, 3] <= h + 1e-4).all()
        if path.startswith('rpn/'):
            # proposals: objectness-sorted, labels all 0, at most max_per_img
            assert 0 < len(res) <= 100 and (res.labels == 0).all()
            assert (res.scores[:-1] >= res.scores[1:]).all()
        elif 'mask' in path:
            assert res.masks.shape == (len(res), h, w)


def test_rpn_detector_outputs_proposals_and_ignores_classes():
    cfg = _shrunk(Config.fromfile(osp.join(MODELS_DIR, 'rpn_r50_fpn.py')))
    cfg.model.rpn_head.num_classes = 5  # warned about and set to 1, as MMDetection
    model = MODELS.build(cfg.model)
    assert model.bbox_head.num_classes == 1 and type(model.bbox_head).num_classes_from_dataset \
        is False
    assert model.finetune_preset is None
    inputs = torch.randn(1, 3, 64, 64)
    cls_scores, bbox_preds = model(inputs, mode='tensor')
    assert len(cls_scores) == 5 and cls_scores[0].shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match='test_cfg=dict\\(rpn='):
        MODELS.build(dict(cfg.model, test_cfg=None))


def test_cascade_tensor_mode():
    cfg = _shrunk(Config.fromfile(osp.join(MODELS_DIR, 'cascade_mask_rcnn_r50_fpn.py')))
    model = MODELS.build(cfg.model).eval()
    assert model.finetune_preset == 'cascade_rcnn'
    (outs,) = model(torch.randn(2, 3, 64, 64), mode='tensor')
    cls_scores, bbox_preds, masks = outs
    assert len(cls_scores) == len(bbox_preds) == len(masks) == 2
    assert cls_scores[0].shape[1] == 4 and bbox_preds[0].shape[1] == 4  # class-agnostic
    assert masks[0].shape[1:] == (3, 28, 28) and 0 <= masks[0].min() <= masks[0].max() <= 1
