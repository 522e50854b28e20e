"""Top-level config keys that look like typos get a warning naming the key meant; the
variables real MMDetection configs define do not."""
import logging

from mmengine.config import Config
from mmengine.logging import MMLogger

from mmft.utils.cli import build_runner
from mmft.utils.config_keys import suspicious_keys
from tests.tiny_runs import tiny_config


def _write(folder, name, text):
    path = folder / name
    path.write_text(text)
    return str(path)


def test_a_misspelt_key_is_flagged_with_the_key_meant(tmp_path):
    _write(tmp_path, 'base.py', "model = dict(type='MaskRCNN')\nload_from = None\n")
    path = _write(tmp_path, 'cfg.py', "_base_ = './base.py'\nlod_from = 'ckpt.pth'\n"
                  "trian_cfg = dict(max_epochs=2)\nresum = True\n")
    assert suspicious_keys(Config.fromfile(path)) == {
        'lod_from': 'load_from', 'trian_cfg': 'train_cfg', 'resum': 'resume'}


def test_misspelt_default_hook_names_are_flagged(tmp_path):
    path = _write(tmp_path, 'cfg.py', "default_hooks = dict(checkpont=dict(interval=2), "
                  "logger=dict(interval=5), my_hook=dict(type='EMAHook'))\n")
    assert suspicious_keys(Config.fromfile(path)) == {
        'default_hooks.checkpont': 'default_hooks.checkpoint'}


def test_keys_set_only_on_the_command_line_are_checked_too(tmp_path):
    cfg = Config.fromfile(_write(tmp_path, 'cfg.py', "model = dict(type='MaskRCNN')\n"))
    cfg.merge_from_dict({'lod_from': 'x.pth', 'default_hooks.checkpoint.interval': 2})
    assert suspicious_keys(cfg) == {'lod_from': 'load_from'}


def test_variables_of_mmdetection_style_configs_pass(tmp_path):
    # patterns from MMDetection 3.3's configs (none of the 808 that load here is flagged)
    _write(tmp_path, 'base.py', (
        "dataset_type = 'CocoDataset'\ndata_root = 'data/coco/'\nbackend_args = None\n"
        "train_pipeline = [dict(type='LoadImageFromFile', backend_args=backend_args)]\n"
        "train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root,\n"
        "                                     pipeline=train_pipeline))\n"
        "max_epochs = 12\ntrain_cfg = dict(max_epochs=max_epochs)\n"))
    path = _write(tmp_path, 'cfg.py', (
        "_base_ = './base.py'\nmax_epoch = 24\n"  # close to max_epochs, but used
        "train_cfg = dict(max_epochs=max_epoch)\n"
        "train_dataloader = dict(dataset=dict(data_root={{_base_.data_root}}))\n"
        "my_note = 'anything far from a known key'\ntrain_metainfo = dict(classes=('a', ))\n"
        "lr_mult = 0.1\n"))
    assert suspicious_keys(Config.fromfile(path)) == {}


def test_train_and_test_warn_before_building_the_runner(tmp_path):
    messages = []

    class _Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    cfg = tiny_config(str(tmp_path / 'data'), str(tmp_path / 'work'))
    cfg.dump(str(tmp_path / 'cfg.py'))
    cfg = Config.fromfile(str(tmp_path / 'cfg.py'))
    cfg.merge_from_dict(dict(lod_from='x.pth'))  # as --cfg-options lod_from=x.pth
    logger = MMLogger.get_current_instance()
    handler = _Collect()
    logger.addHandler(handler)
    try:
        runner = build_runner(cfg)
    finally:
        logger.removeHandler(handler)
    assert runner.cfg.lod_from == 'x.pth'  # a warning, not an error
    assert any("config key 'lod_from': it is read by nothing" in m and
               "did you mean 'load_from'?" in m for m in messages)
