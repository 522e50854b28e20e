"""MMDetection's configs for ResNeXt, Swin, RegNet, HRNet, DCN and GCNet build and train in mmft.

The config files are MMDetection 3.3's text (mmdet_backbone_configs.py); the only change is
``default_scope = 'mmft'``. The backbones' ``init_cfg`` (a download) is dropped before
building, and a training step runs on one synthetic 64x64 image.
"""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData

from mmft.registry import MODELS
from mmft.structures import BitmapMasks, DetDataSample
from tests.test_configs.mmdet_backbone_configs import MMDET_CONFIGS

EMPTY_BASES = ('_base_/datasets/coco_instance.py', '_base_/datasets/coco_detection.py')


@pytest.fixture(scope='module')
def config_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('mmdet_configs')
    files = dict(MMDET_CONFIGS)
    files.update({name: '' for name in EMPTY_BASES})
    files['_base_/default_runtime.py'] = "default_scope = 'mmft'\n"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _batch(with_mask):
    img = np.full((64, 64, 3), 100, np.uint8)
    img[8:30, 10:34] = (40, 40, 220)
    img[36:58, 30:60] = (40, 200, 40)
    boxes = torch.tensor([[10., 8., 34., 30.], [30., 36., 60., 58.]])
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                         scale_factor=(1., 1.)))
    gt = InstanceData(bboxes=boxes, labels=torch.tensor([0, 3]))
    if with_mask:
        masks = np.zeros((2, 64, 64), np.uint8)
        masks[0, 8:30, 10:34] = 1
        masks[1, 36:58, 30:60] = 1
        gt.masks = BitmapMasks(masks, 64, 64)
    sample.gt_instances = gt
    return dict(inputs=[torch.from_numpy(img).permute(2, 0, 1).contiguous()],
                data_samples=[sample])


def _build(config_dir, name):
    cfg = Config.fromfile(str(config_dir / name))
    assert cfg.default_scope == 'mmft'
    cfg.model.backbone.init_cfg = None  # no download in tests
    model = MODELS.build(cfg.model)
    model.init_weights()
    return cfg, model


CASES = [
    ('mask_rcnn/mask-rcnn_x101-32x4d_fpn_1x_coco.py', 'ResNeXt', 'layer2.0.bn3.weight'),
    ('faster_rcnn/faster-rcnn_x101-64x4d_fpn_1x_coco.py', 'ResNeXt', 'layer2.0.bn3.weight'),
    ('swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py', 'SwinTransformer',
     'stages.0.blocks.1.attn.w_msa.qkv.weight'),
    ('regnet/mask-rcnn_regnetx-3.2GF_fpn_1x_coco.py', 'RegNet', 'layer2.0.bn3.weight'),
    ('dcn/mask-rcnn_r50-dconv-c3-c5_fpn_1x_coco.py', 'ResNet', 'layer2.0.bn3.weight'),
    ('dcnv2/faster-rcnn_r50-mdconv-c3-c5_fpn_1x_coco.py', 'ResNet', 'layer3.0.bn3.weight'),
    ('gcnet/mask-rcnn_r50-gcb-r16-c3-c5_fpn_1x_coco.py', 'ResNet',
     'layer4.0.context_block.channel_add_conv.3.weight'),
    ('hrnet/faster-rcnn_hrnetv2p-w18-1x_coco.py', 'HRNet', 'stage4.0.branches.3.0.conv1.weight'),
    ('hrnet/mask-rcnn_hrnetv2p-w18-1x_coco.py', 'HRNet', 'stage2.0.fuse_layers.0.1.0.weight'),
]


@pytest.mark.slow
@pytest.mark.parametrize('name,backbone,param', CASES)
def test_mmdetection_config_builds_and_trains_a_step(config_dir, name, backbone, param):
    torch.manual_seed(0)
    cfg, model = _build(config_dir, name)
    assert type(model.backbone).__name__ == backbone
    if 'dconv' in name or 'mdconv' in name:
        assert type(model.backbone.layer3[0].conv2).__name__.endswith('DeformConv2dPack')
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    watched = dict(model.backbone.named_parameters())[param]
    before = watched.detach().clone()
    model.train()
    losses = model.train_step(_batch(with_mask=name.split('/')[1].startswith('mask')), optim)
    assert torch.isfinite(losses['loss'])
    assert not torch.equal(before, watched.detach())  # the step reached the backbone


def test_swin_config_paramwise_cfg_gives_no_decay_to_norms_and_tables(config_dir):
    cfg, model = _build(config_dir, 'swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py')
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {id(p): g['weight_decay'] for g in optim.optimizer.param_groups for p in g['params']}
    named = dict(model.named_parameters())
    for key in ('backbone.stages.0.blocks.0.attn.w_msa.relative_position_bias_table',
                'backbone.stages.1.blocks.1.norm1.weight', 'backbone.norm3.bias',
                'backbone.stages.0.downsample.norm.weight', 'backbone.patch_embed.norm.weight'):
        assert decay[id(named[key])] == 0., key
    assert decay[id(named['backbone.stages.0.blocks.0.attn.w_msa.qkv.weight'])] == 0.05
    assert cfg.model.neck.in_channels == [96, 192, 384, 768]


@pytest.mark.parametrize('ours,theirs', [
    ('mask_rcnn_x101-32x4d_fpn.py', 'mask_rcnn/mask-rcnn_x101-32x4d_fpn_1x_coco.py'),
    ('mask_rcnn_swin-t-p4-w7_fpn.py', 'swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'),
    ('mask_rcnn_regnetx-3.2gf_fpn.py', 'regnet/mask-rcnn_regnetx-3.2GF_fpn_1x_coco.py'),
    ('mask_rcnn_r50-dconv-c3-c5_fpn.py', 'dcn/mask-rcnn_r50-dconv-c3-c5_fpn_1x_coco.py'),
    ('faster_rcnn_hrnetv2p-w18_hrfpn.py', 'hrnet/faster-rcnn_hrnetv2p-w18-1x_coco.py'),
])
def test_mmft_base_model_files_hold_mmdetections_model(config_dir, repo_root, ours, theirs):
    import os.path as osp
    mine = Config.fromfile(osp.join(repo_root, 'configs/_base_/models', ours)).model.to_dict()
    ref = Config.fromfile(str(config_dir / theirs)).model.to_dict()
    assert mine['backbone'] == ref['backbone']
    assert mine['neck'] == ref['neck']
    assert mine['data_preprocessor'] == ref['data_preprocessor']
