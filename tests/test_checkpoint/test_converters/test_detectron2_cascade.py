"""Detectron2's Cascade Mask R-CNN R50-FPN -> mmft's CascadeRCNN, key for key, and into a
Cityscapes model with every stage's class rows transferred."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmft.checkpoint import read_checkpoint
from mmft.checkpoint.converters import COCO_CLASSES, convert_detectron2
from mmft.finetune import FinetuneConfig, load_pretrained
from mmft.registry import MODELS
from tests.test_checkpoint.test_converters.foreign_checkpoints import (
    detectron2_cascade_mask_rcnn_r50_fpn, write_pickle)

REPO = osp.join(osp.dirname(__file__), '..', '..', '..')
CITYSCAPES = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')


@pytest.fixture(scope='module')
def cascade_weights():
    return detectron2_cascade_mask_rcnn_r50_fpn()


@pytest.fixture(scope='module')
def mmft_cascade():
    """mmft's Cascade Mask R-CNN R50-FPN as Detectron2 weights need it (caffe-style, frozen BN)."""
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/models/cascade_mask_rcnn_r50_fpn.py'))
    cfg.model.backbone.update(style='caffe', norm_cfg=dict(type='BN', requires_grad=False),
                              init_cfg=None)
    return MODELS.build(cfg.model)


def test_every_key_converts_and_loads_strictly(cascade_weights, mmft_cascade):
    result = convert_detectron2({'model': cascade_weights, '__author__': 'test'})
    assert result.unconverted == []
    assert result.meta['cascade_stages'] == 3 and result.meta['classes'] == COCO_CLASSES
    model_shapes = {k: tuple(v.shape) for k, v in mmft_cascade.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in result.state_dict.items()} == model_shapes
    missing, unexpected = mmft_cascade.load_state_dict(result.state_dict, strict=True)
    assert missing == [] and unexpected == []


def test_values_land_in_their_stage(cascade_weights):
    sd = convert_detectron2(cascade_weights).state_dict
    for t in range(3):
        box, pred = f'roi_heads.box_head.{t}.', f'roi_heads.box_predictor.{t}.'
        pairs = {f'roi_head.bbox_head.{t}.shared_fcs.0.weight': box + 'fc1.weight',
                 f'roi_head.bbox_head.{t}.shared_fcs.1.bias': box + 'fc2.bias',
                 f'roi_head.bbox_head.{t}.fc_cls.weight': pred + 'cls_score.weight',
                 f'roi_head.bbox_head.{t}.fc_reg.bias': pred + 'bbox_pred.bias',
                 # Detectron2's single mask head serves every stage
                 f'roi_head.mask_head.{t}.conv_logits.weight':
                     'roi_heads.mask_head.predictor.weight',
                 f'roi_head.mask_head.{t}.convs.2.conv.bias': 'roi_heads.mask_head.mask_fcn3.bias',
                 f'roi_head.mask_head.{t}.upsample.weight': 'roi_heads.mask_head.deconv.weight'}
        for mmft_key, d2_key in pairs.items():
            assert np.array_equal(sd[mmft_key].numpy(), cascade_weights[d2_key]), mmft_key
    # the stages are different tensors, not views of one another
    sd['roi_head.mask_head.0.conv_logits.weight'].zero_()
    assert sd['roi_head.mask_head.2.conv_logits.weight'].abs().sum() > 0
    # a plain Mask R-CNN file keeps its unnumbered layout
    assert not any(k.startswith('roi_head.bbox_head.0.') for k in convert_detectron2(
        {'roi_heads.box_predictor.cls_score.weight': np.zeros((81, 8), np.float32)}).state_dict)


@pytest.mark.slow  # a full-size R50 file written, read and fine-tuned: ~30 s on 2 busy cores
def test_pkl_fine_tunes_to_cityscapes_with_every_stage_transferred(cascade_weights, tmp_path):
    path = write_pickle({'model': cascade_weights, '__author__': 'test'},
                        tmp_path / 'model_final_480dd8.pkl')
    loaded = read_checkpoint(path)
    assert loaded.format == 'detectron2' and loaded.unconverted == []
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/finetune/cityscapes_cascade_mask_rcnn_detectron2.py'))
    model = MODELS.build(cfg.model)
    report = load_pretrained(model, str(path), FinetuneConfig.from_cfg(cfg.finetune),
                             new_classes=CITYSCAPES)
    rows = [f'roi_head.bbox_head.{t}.fc_cls.{p}' for t in range(3) for p in ('weight', 'bias')] + \
        [f'roi_head.mask_head.{t}.conv_logits.{p}' for t in range(3) for p in ('weight', 'bias')]
    assert sorted(report.transferred) == sorted(rows)
    assert report.skipped_suspicious == [] and report.missing == []
    out = model.state_dict()
    car, person = COCO_CLASSES.index('car'), COCO_CLASSES.index('person')
    for t in range(3):
        cls = torch.from_numpy(cascade_weights[f'roi_heads.box_predictor.{t}.cls_score.weight'])
        assert torch.equal(out[f'roi_head.bbox_head.{t}.fc_cls.weight'][2], cls[car])
        assert torch.equal(out[f'roi_head.bbox_head.{t}.fc_cls.weight'][1], cls[person])  # rider
        assert torch.equal(out[f'roi_head.bbox_head.{t}.fc_cls.weight'][8], cls[80])  # background
        assert torch.equal(out[f'roi_head.bbox_head.{t}.fc_reg.weight'], torch.from_numpy(
            cascade_weights[f'roi_heads.box_predictor.{t}.bbox_pred.weight']))
    logits = torch.from_numpy(cascade_weights['roi_heads.mask_head.predictor.weight'])
    assert torch.equal(out['roi_head.mask_head.1.conv_logits.weight'][2], logits[car])
