"""Mask R-CNN with the new backbones learns: overfitting a tiny batch finds every object."""
import numpy as np
import pytest
import torch
from mmengine.optim import OptimWrapper

from mmft.registry import MODELS
from tests.test_models.test_detectors.test_two_stage import (TRAIN_SCENES, _batch, _config,
                                                             _found, _gt_at_ori_shape, _scene)

HRNET_TINY = dict(
    stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(1, ),
                num_channels=(16, )),
    stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(1, 1),
                num_channels=(8, 16)),
    stage3=dict(num_modules=1, num_branches=3, block='BASIC', num_blocks=(1, 1, 1),
                num_channels=(8, 16, 32)),
    stage4=dict(num_modules=1, num_branches=4, block='BASIC', num_blocks=(1, 1, 1, 1),
                num_channels=(8, 16, 32, 64)))
FAMILIES = {
    'swin': dict(backbone=dict(_delete_=True, type='SwinTransformer', embed_dims=16,
                               depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=4,
                               drop_path_rate=0.),
                 neck=dict(in_channels=[16, 32, 64, 128], out_channels=32)),
    'hrnet': dict(backbone=dict(_delete_=True, type='HRNet', extra=HRNET_TINY, norm_eval=False),
                  neck=dict(_delete_=True, type='HRFPN', in_channels=[8, 16, 32, 64],
                            out_channels=32)),
    'resnext-dcn': dict(backbone=dict(type='ResNeXt', depth=50, groups=4, base_width=4,
                                      base_channels=16, frozen_stages=-1, init_cfg=None,
                                      dcn=dict(type='DCNv2', deform_groups=1),
                                      stage_with_dcn=(False, False, True, True)),
                        neck=dict(in_channels=[64, 128, 256, 512], out_channels=32)),
}


def _model(family):
    cfg = _config('mask_rcnn_r50_fpn')
    cfg.merge_from_dict({
        'model.rpn_head': dict(in_channels=32, feat_channels=32),
        'model.roi_head.bbox_roi_extractor.out_channels': 32,
        'model.roi_head.bbox_head': dict(in_channels=32, fc_out_channels=128, num_classes=3),
        'model.roi_head.mask_roi_extractor.out_channels': 32,
        'model.roi_head.mask_head': dict(num_convs=2, in_channels=32, conv_out_channels=32,
                                         num_classes=3),
        'model.train_cfg.rpn_proposal': dict(nms_pre=200, max_per_img=100),
        'model.train_cfg.rcnn.sampler.num': 64,
        'model.test_cfg.rpn': dict(nms_pre=200, max_per_img=100),
    })
    cfg.merge_from_dict(dict(model=FAMILIES[family]))
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.mark.slow
@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_overfits_a_tiny_batch(family):
    torch.manual_seed(0)
    model = _model(family)
    data = _batch(*[_scene(**kwargs) for kwargs in TRAIN_SCENES])
    optim = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3))
    model.train()
    history = [model.train_step(data, optim)['loss'].item() for _ in range(100)]
    assert np.mean(history[-5:]) < 0.3 * history[0], history[::10]
    model.eval()
    with torch.no_grad():
        preds = model.test_step(data)
    for pred, sample in zip(preds, data['data_samples']):
        found = _found(pred.pred_instances, _gt_at_ori_shape(sample), min_score=0.3)
        assert None not in found, (family, found)
