"""Fine-tuning with the new backbones through FinetuneRunner: load, class transfer, freezing
by stage and by pattern, norm_eval and MMDetection's Swin paramwise_cfg."""
import os.path as osp

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmft.checkpoint import torch_load_safely
from mmft.engine import FinetuneRunner
from mmft.finetune.optim_groups import optimizer_param_ids
from tests.tiny_runs import SOURCE_CLASSES, TARGET_CLASSES, make_shapes_data, tiny_config

# small members of each family, sized for 64 px images
BACKBONES = {
    'swin': (dict(_delete_=True, type='SwinTransformer', embed_dims=16, depths=(2, 2, 2, 2),
                  num_heads=(1, 2, 2, 4), window_size=4, drop_path_rate=0.1),
             [16, 32, 64, 128]),
    'resnext': (dict(_delete_=True, type='ResNeXt', depth=50, groups=4, base_width=4,
                     base_channels=16, frozen_stages=-1, norm_eval=False),
                [64, 128, 256, 512]),
    'regnet': (dict(_delete_=True, type='RegNet', frozen_stages=-1, norm_eval=False,
                    arch=dict(w0=8, wa=10, wm=2.0, group_w=8, depth=8, bot_mul=1.0)),
               [8, 16, 32, 64]),
    'hrnet': (dict(_delete_=True, type='HRNet', norm_eval=False, extra=dict(
        stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(1, ),
                    num_channels=(16, )),
        stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(1, 1),
                    num_channels=(8, 16)),
        stage3=dict(num_modules=1, num_branches=3, block='BASIC', num_blocks=(1, 1, 1),
                    num_channels=(8, 16, 32)),
        stage4=dict(num_modules=1, num_branches=4, block='BASIC', num_blocks=(1, 1, 1, 1),
                    num_channels=(8, 16, 32, 64)))),
              [8, 16, 32, 64]),
}


def _neck(family, channels):
    if family == 'hrnet':
        return dict(_delete_=True, type='HRFPN', in_channels=channels, out_channels=16)
    return dict(in_channels=channels)
# MMDetection's Swin configs: no weight decay on norms, position tables and embeddings
SWIN_PARAMWISE = dict(custom_keys={'absolute_pos_embed': dict(decay_mult=0.),
                                   'relative_position_bias_table': dict(decay_mult=0.),
                                   'norm': dict(decay_mult=0.)})


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return make_shapes_data(str(tmp_path_factory.mktemp('shapes')))


def _cfg(shapes, family, work_dir, classes, **overrides):
    backbone, channels = BACKBONES[family]
    split = 'source' if classes is SOURCE_CLASSES else 'target'
    cfg = tiny_config(shapes[split], str(work_dir), classes, **overrides)
    cfg.merge_from_dict(dict(model=dict(backbone=dict(backbone),
                                        neck=_neck(family, channels))))
    return cfg


@pytest.mark.parametrize('family', sorted(BACKBONES))
def test_fine_tune_from_source_classes_with_frozen_stage(shapes, tmp_path, family):
    source_dir = tmp_path / 'source'
    FinetuneRunner.from_cfg(_cfg(shapes, family, source_dir, SOURCE_CLASSES,
                                 max_iters=2)).train()
    source_ckpt = osp.join(source_dir, 'iter_2.pth')
    frozen_prefix = {'swin': 'backbone.stages.0.', 'hrnet': 'backbone.stage2.'}.get(
        family, 'backbone.layer1.')
    overrides = dict(load_from=source_ckpt, max_iters=3,
                     finetune=dict(class_mapping={'box': 'square'},
                                   freeze=[frozen_prefix.rstrip('.')]))
    if family == 'swin':
        overrides['optim_wrapper'] = dict(
            optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, weight_decay=0.05),
            paramwise_cfg=SWIN_PARAMWISE)
    runner = FinetuneRunner.from_cfg(_cfg(shapes, family, tmp_path / 'target', TARGET_CLASSES,
                                          **overrides))
    runner.train()

    report = runner.load_report
    assert len(report.transferred) == 6  # fc_cls, fc_reg, conv_logits (weight, bias)
    src = torch_load_safely(source_ckpt)['state_dict']
    out = runner.model.state_dict()
    backbone_keys = [k for k in src if k.startswith('backbone.')]
    assert backbone_keys and all(k in out for k in backbone_keys)
    for key in backbone_keys:
        if key.startswith(frozen_prefix):
            assert torch.equal(out[key], src[key]), key
    trained = [k for k in backbone_keys if not k.startswith(frozen_prefix)
               and src[k].is_floating_point() and not torch.equal(out[k], src[k])]
    assert trained  # the rest of the backbone moved
    in_optimizer = optimizer_param_ids(runner.optim_wrapper.optimizer)
    for name, param in runner.model.named_parameters():
        frozen = name.startswith(frozen_prefix)
        assert param.requires_grad is not frozen, name
        assert (id(param) in in_optimizer) is not frozen, name
    if family == 'swin':
        groups = runner.optim_wrapper.optimizer.param_groups
        decay = {id(p): g['weight_decay'] for g in groups for p in g['params']}
        named = dict(runner.model.named_parameters())
        assert decay[id(named['backbone.stages.1.blocks.0.attn.w_msa.'
                             'relative_position_bias_table'])] == 0.
        assert decay[id(named['backbone.norm2.weight'])] == 0.
        assert decay[id(named['backbone.stages.1.blocks.0.attn.w_msa.qkv.weight'])] == 0.05


@pytest.mark.parametrize('family', ['resnext', 'regnet'])
def test_backbone_norm_eval_and_frozen_stages_survive_train_mode(shapes, tmp_path, family):
    backbone = dict(BACKBONES[family][0], frozen_stages=1, norm_eval=True)
    cfg = tiny_config(shapes['target'], str(tmp_path), TARGET_CLASSES)
    cfg.merge_from_dict(dict(model=dict(backbone=backbone,
                                        neck=dict(in_channels=BACKBONES[family][1]))))
    runner = FinetuneRunner.from_cfg(cfg)
    model = runner.model.train()
    assert all(not m.training for m in model.backbone.modules() if isinstance(m, _BatchNorm))
    assert not any(p.requires_grad for p in model.backbone.layer1.parameters())
    assert all(p.requires_grad for p in model.backbone.layer2.parameters())


def test_inspect_finetune_reports_a_frozen_swin_backbone(shapes, tmp_path):
    from tools.analysis_tools.inspect_finetune import inspect_finetune
    cfg = _cfg(shapes, 'swin', tmp_path / 'ft', TARGET_CLASSES,
               finetune=dict(freeze=['backbone'], unfreeze=['backbone.stages.3@iter10']))
    text = inspect_finetune(cfg)
    rows = {line.split('|')[1].strip(): line.split('|')[2].strip()
            for line in text.splitlines() if line.startswith('| backbone')}
    assert rows and all(trainable == '0' for trainable in rows.values()), rows
    assert "unfreezes ['backbone.stages.3'] at iter 10" in text
