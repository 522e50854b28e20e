"""print_config prints the config with _base_ merged and --cfg-options applied."""
import os.path as osp

from mmengine.config import Config

from tools.misc import print_config


def _configs(tmp_path) -> str:
    (tmp_path / 'base.py').write_text(
        "model = dict(type='MaskRCNN', roi_head=dict(bbox_head=dict(num_classes=80)))\n"
        "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.02, momentum=0.9))\n"
        "train_cfg = dict(max_epochs=12)\n")
    (tmp_path / 'child.py').write_text(
        "_base_ = './base.py'\n"
        "model = dict(roi_head=dict(bbox_head=dict(num_classes=8)))\n")
    return str(tmp_path / 'child.py')


def test_prints_inherited_and_overridden_values(tmp_path, capsys):
    config = _configs(tmp_path)
    print_config.main([config, '--cfg-options', 'optim_wrapper.optimizer.lr=0.005',
                       'train_cfg.max_epochs=4'])
    out = capsys.readouterr().out
    assert "type='MaskRCNN'" in out                    # from _base_
    assert 'num_classes=8' in out and 'num_classes=80' not in out
    assert 'lr=0.005' in out and 'momentum=0.9' in out
    assert 'max_epochs=4' in out and '_base_' not in out


def test_save_path_writes_a_config_that_loads_back(tmp_path, capsys):
    saved = str(tmp_path / 'resolved.py')
    print_config.main([_configs(tmp_path), '--cfg-options', 'train_cfg.max_epochs=2',
                       '--save-path', saved])
    assert osp.isfile(saved)
    cfg = Config.fromfile(saved)
    assert cfg.train_cfg.max_epochs == 2 and cfg.model.roi_head.bbox_head.num_classes == 8
