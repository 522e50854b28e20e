"""--cfg-options, --resume, --amp and work_dir handling of tools/train.py and tools/test.py."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmft.utils.cli import apply_resume, enable_amp, enable_auto_scale_lr, resolve_work_dir
from tools import test as test_tool
from tools import train as train_tool


def _merged(repo_root, argv):
    args = train_tool.parse_args(argv)
    cfg = Config.fromfile(osp.join(repo_root, args.config))
    cfg.merge_from_dict(args.cfg_options)
    return args, cfg


def test_cfg_options_override_nested_keys_and_list_items(repo_root):
    _, cfg = _merged(repo_root, [
        'configs/finetune/cityscapes.py', '--cfg-options',
        'model.roi_head.bbox_head.num_classes=3',
        'optim_wrapper.optimizer.lr=0.005',
        'param_scheduler.1.milestones=[5,6]',       # list index, list value
        'train_cfg.max_epochs=4',
        'model.backbone.out_indices=(0,1,2)',        # tuple value
        'finetune.exclude=[*fc_cls*,*conv_logits*]',
    ])
    assert cfg.model.roi_head.bbox_head.num_classes == 3
    assert cfg.model.roi_head.mask_head.num_classes == 8  # sibling untouched
    assert cfg.optim_wrapper.optimizer.lr == 0.005
    assert cfg.optim_wrapper.optimizer.momentum == 0.9
    assert cfg.param_scheduler[1].milestones == [5, 6]
    assert cfg.param_scheduler[1].gamma == 0.1
    assert cfg.param_scheduler[0].type == 'LinearLR'
    assert cfg.train_cfg.max_epochs == 4
    assert cfg.model.backbone.out_indices == (0, 1, 2)
    assert cfg.finetune.exclude == ['*fc_cls*', '*conv_logits*']


def test_resume_flag_forms():
    cfg = Config(dict(load_from='coco.pth', resume=False))
    apply_resume(cfg, train_tool.parse_args(['c.py', '--resume']).resume)
    # the latest checkpoint of the work_dir if any, else fine-tune from load_from
    assert cfg.resume == 'auto' and cfg.load_from == 'coco.pth'
    cfg = Config(dict(load_from='coco.pth', resume=False))
    apply_resume(cfg, train_tool.parse_args(['c.py', '--resume', 'w/epoch_3.pth']).resume)
    assert cfg.resume is True and cfg.load_from == 'w/epoch_3.pth'
    cfg = Config(dict(load_from='coco.pth', resume=False))
    apply_resume(cfg, train_tool.parse_args(['c.py']).resume)
    assert cfg.resume is False and cfg.load_from == 'coco.pth'


def test_work_dir_precedence():
    cfg = Config(dict())
    resolve_work_dir(cfg, 'configs/finetune/cityscapes.py', None)
    assert cfg.work_dir == './work_dirs/cityscapes'
    resolve_work_dir(cfg, 'configs/finetune/cityscapes.py', '/tmp/w')
    assert cfg.work_dir == '/tmp/w'


def test_auto_scale_lr_and_amp(repo_root):
    cfg = Config.fromfile(osp.join(repo_root, 'configs/finetune/cityscapes.py'))
    enable_auto_scale_lr(cfg)
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=8)
    with pytest.raises(ValueError, match='base_batch_size'):
        enable_auto_scale_lr(Config(dict(auto_scale_lr=None)))


def test_amp_without_a_gpu_is_refused(repo_root, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = Config.fromfile(osp.join(repo_root, 'configs/finetune/cityscapes.py'))
    with pytest.raises(RuntimeError, match='--amp needs a CUDA GPU'):
        enable_amp(cfg)


# on .ci/allowed_skips.txt: the one kind of test that may skip in CI
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_amp_on_a_gpu(repo_root):
    cfg = Config.fromfile(osp.join(repo_root, 'configs/finetune/cityscapes.py'))
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'


def test_test_tool_rejects_non_pickle_out():
    with pytest.raises(SystemExit):
        test_tool.parse_args(['c.py', 'ckpt.pth', '--out', 'results.json'])
    assert test_tool.parse_args(['c.py', 'ckpt.pth', '--out', 'r.pkl']).out == 'r.pkl'
