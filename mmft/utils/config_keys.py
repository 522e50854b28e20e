"""Top-level config keys that look like typos: ``lod_from = ...`` trains from scratch.

MMEngine reads the keys it knows and ignores the rest, because config files also hold
plain variables (``dataset_type``, ``train_pipeline``, ``max_epochs``, ...) that other
entries use. A misspelt key therefore passes silently. :func:`suspicious_keys` flags a
top-level key only when all three hold:

1. no one reads it: it is neither a key MMEngine's Runner, mmft or the tools read, nor a
   variable MMDetection's own configs define;
2. it is close (``difflib`` ratio >= 0.8) to such a known key;
3. nothing else in the config uses it: its name appears only once in the text of the
   config file and its ``_base_`` files (a key that only ``--cfg-options`` set appears
   nowhere), so variables such as ``max_epoch = 12`` used in ``train_cfg`` pass.

The names in ``default_hooks`` are checked the same way against the default hooks'
names (``checkpont=dict(...)`` would add a second hook and leave ``checkpoint`` as it was).
tools/train.py and tools/test.py warn about each one before the Runner is built.
"""
import difflib
import logging
import os.path as osp
import re
from typing import Dict, List, Optional

from mmengine.config import Config
from mmengine.logging import print_log

#: read by MMEngine's Runner (from_cfg, __init__, setup_env, build_* and the tools)
RUNNER_KEYS = (
    'model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg',
    'val_cfg', 'test_cfg', 'auto_scale_lr', 'optim_wrapper', 'param_scheduler',
    'val_evaluator', 'test_evaluator', 'default_hooks', 'custom_hooks', 'data_preprocessor',
    'load_from', 'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level', 'visualizer',
    'default_scope', 'randomness', 'experiment_name', 'model_wrapper_cfg',
    'find_unused_parameters', 'sync_bn', 'compile', 'cudnn_benchmark', 'runner_type',
    'custom_imports', 'strategy', 'activation_checkpointing', 'efficient_conv_bn_eval',
    'resource_limit', 'gpu_ids', 'filename')
#: read by mmft (FinetuneRunner, tools/test.py --tta)
MMFT_KEYS = ('finetune', 'tta_model', 'tta_pipeline')
#: variables MMDetection 3.x's configs define and use (never flagged, and typos of them are)
CONVENTIONAL_KEYS = (
    'dataset_type', 'data_root', 'backend_args', 'train_pipeline', 'test_pipeline',
    'metainfo', 'classes', 'class_name', 'palette', 'num_classes', 'max_epochs',
    'max_iters', 'base_lr', 'interval', 'norm_cfg', 'image_size', 'img_scale', 'img_scales',
    'input_size', 'batch_size', 'num_workers', 'batch_augments', 'vis_backends',
    'pretrained', 'checkpoint', 'ann_file', 'img_prefix', 'img_norm_cfg', 'train_dataset',
    'val_dataset', 'test_dataset', 'custom_keys', 'depths', 'conv_cfg', 'num_levels',
    'num_stages', 'num_proposals', 'albu_train_transforms', 'file_client_args',
    'train_pipeline_stage2', 'stage2_num_epochs', 'num_last_epochs', 'dynamic_intervals',
    'num_things_classes', 'num_stuff_classes', 'data', 'evaluation', 'optimizer',
    'optimizer_config', 'lr_config', 'checkpoint_config', 'log_config', 'runner',
    'workflow', 'dist_params', 'opencv_num_threads', 'mp_start_method')
KNOWN_KEYS = frozenset(RUNNER_KEYS + MMFT_KEYS + CONVENTIONAL_KEYS)
#: the hooks MMEngine's Runner fills ``default_hooks`` with, and MMDetection's visualization
DEFAULT_HOOK_NAMES = ('runtime_info', 'timer', 'sampler_seed', 'logger', 'param_scheduler',
                      'checkpoint', 'visualization')
CUTOFF = 0.8


def _config_texts(filename: Optional[str]) -> Optional[List[str]]:
    """The source of ``filename`` and of every ``_base_`` file it inherits; None when
    one of them cannot be read (then usage cannot be told, and nothing is flagged)."""
    if not filename or not osp.isfile(filename) or not filename.endswith('.py'):
        return None
    texts, todo, seen = [], [osp.abspath(filename)], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if not osp.isfile(path):
            return None  # e.g. 'mmdet::...' package configs
        with open(path, encoding='utf-8') as f:
            texts.append(f.read())
        try:
            bases = Config._get_base_files(path)
        except Exception:  # noqa: BLE001 - unreadable syntax: Config.fromfile said so already
            return None
        todo.extend(osp.normpath(osp.join(osp.dirname(path), b)) for b in bases)
    return texts


def suspicious_keys(cfg: Config, filename: Optional[str] = None) -> Dict[str, str]:
    """Top-level keys of ``cfg`` that look like misspellings: key -> the known key it is
    closest to. ``filename`` defaults to the file ``cfg`` was read from."""
    texts = _config_texts(filename or cfg.filename)
    if texts is None and (filename or cfg.filename):
        return {}
    text = '\n'.join(texts or [])
    found = {}
    for key in cfg.keys():
        if key in KNOWN_KEYS or key.startswith('_'):
            continue
        close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1, cutoff=CUTOFF)
        if not close:
            continue
        if len(re.findall(rf'(?<!\w){re.escape(key)}\b', text)) > 1:
            continue  # defined and used: a variable
        found[key] = close[0]
    hooks = cfg.get('default_hooks')
    if isinstance(hooks, dict):
        # a misspelt name adds a second hook (or fails for want of a type) and leaves the
        # default one as it was
        for name in hooks:
            if name in DEFAULT_HOOK_NAMES:
                continue
            close = difflib.get_close_matches(name, DEFAULT_HOOK_NAMES, n=1, cutoff=CUTOFF)
            if close:
                found[f'default_hooks.{name}'] = f'default_hooks.{close[0]}'
    return found


def warn_suspicious_keys(cfg: Config, filename: Optional[str] = None) -> Dict[str, str]:
    """Log a warning for each :func:`suspicious_keys` entry; returns them."""
    found = suspicious_keys(cfg, filename)
    for key, known in found.items():
        if key.startswith('default_hooks.'):
            effect = (f"it adds a hook of its own and leaves '{known}' as the defaults "
                      'set it')
        else:
            effect = 'it is read by nothing and used nowhere else in the config, so it ' \
                'has no effect'
        print_log(f"config key '{key}': {effect}; did you mean '{known}'? (Rename it, or "
                  'remove it if it is a leftover.)', logger='current', level=logging.WARNING)
    return found
