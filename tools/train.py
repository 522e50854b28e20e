"""Train (fine-tune) a detector.

    python tools/train.py CONFIG [--work-dir DIR] [--cfg-options k=v ...]
        [--resume [PATH|auto]] [--amp] [--auto-scale-lr] [--launcher none|pytorch|slurm]
"""
import argparse
import os

from mmengine.config import Config, DictAction

from mmft.utils import register_all_modules
from mmft.utils.cli import (apply_resume, build_runner, enable_amp, enable_auto_scale_lr,
                            prepare_cpu_distributed, resolve_work_dir)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train (fine-tune) a detector')
    parser.add_argument('config', help='config file, e.g. configs/finetune/cityscapes.py')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument('--amp', action='store_true', help='mixed-precision training (GPU)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale lr by total batch / auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from PATH, or with no value (or "auto") from the last checkpoint '
        'in the work_dir')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config keys: a.b=1 list=[1,2] tuple="(1,2)" '
        'model.roi_head.bbox_head.num_classes=8 custom_hooks.0.priority=10')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    resolve_work_dir(cfg, args.config, args.work_dir)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)
    apply_resume(cfg, args.resume)
    prepare_cpu_distributed(cfg, args.launcher)
    runner = build_runner(cfg)
    runner.train()


if __name__ == '__main__':
    main()
