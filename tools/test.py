"""Evaluate a trained detector.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl]
        [--show-dir DIR] [--tta] [--cfg-options k=v ...] [--launcher none|pytorch|slurm]
"""
import argparse
import copy
import os
import os.path as osp

from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log

from mmft.evaluation.metrics import DumpDetResults
from mmft.finetune.load import load_checkpoint

from mmft.utils import register_all_modules
from mmft.utils.cli import build_runner, prepare_cpu_distributed, resolve_work_dir


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a detector')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where the evaluation log goes')
    parser.add_argument('--out', help="dump predictions to this .pkl file in MMDetection's "
                        'result format (RLE masks, no ground truth)')
    parser.add_argument('--show-dir', help='draw predictions into PNGs under this folder '
                        '(relative folders go inside the work_dir\'s timestamp folder)')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation: the '
                        "config's tta_model and tta_pipeline (default: NMS-merged horizontal "
                        'flip of the test pipeline)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, as in tools/train.py')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error(f'--out must end with .pkl or .pickle, got {args.out!r}')
    return args


_FLIP_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                   'flip_direction')


def use_tta(cfg: Config) -> None:
    """Wrap ``cfg.model`` in ``cfg.tta_model`` and test with ``cfg.tta_pipeline``, as
    MMDetection's test.py does; without them, merge a flipped and an unflipped view."""
    if 'tta_model' not in cfg:
        print_log('the config has no tta_model: using DetTTAModel with NMS (iou 0.5, 100 '
                  'per image)', logger='current')
        cfg.tta_model = dict(type='DetTTAModel', tta_cfg=dict(
            nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset:  # wrapped datasets (RepeatDataset, ...): the pipeline is inside
        dataset = dataset['dataset']
    if 'tta_pipeline' not in cfg:
        print_log('the config has no tta_pipeline: using the test pipeline with its last step '
                  'replaced by TestTimeAug (flipped and unflipped view)', logger='current')
        pipeline = copy.deepcopy(dataset.pipeline)
        if not pipeline or pipeline[-1].get('type') != 'PackDetInputs':
            raise ValueError('--tta without a tta_pipeline needs a test pipeline ending in '
                             f'PackDetInputs, got {pipeline}; add tta_pipeline to the config')
        pipeline[-1] = dict(type='TestTimeAug', transforms=[
            [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
            [dict(type='PackDetInputs', meta_keys=_FLIP_META_KEYS)]])
        cfg.tta_pipeline = pipeline
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    dataset.pipeline = cfg.tta_pipeline


def main(argv=None) -> dict:
    args = parse_args(argv)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    resolve_work_dir(cfg, args.config, args.work_dir)
    if args.tta:
        use_tta(cfg)
    # evaluate the checkpoint as it is stored (exact mode): no fine-tuning transformations,
    # no resume; a checkpoint that does not fit, or of other classes, is an error
    cfg.pop('finetune', None)
    cfg.pop('sync_bn', None)  # SyncBN in eval mode is plain BN; CPU runs refuse sync_bn
    cfg.load_from = None
    cfg.resume = False
    if args.show_dir:
        hooks = cfg.setdefault('default_hooks', {})
        vis = hooks.get('visualization') or dict(type='DetVisualizationHook')
        vis.update(draw=True, test_out_dir=args.show_dir)
        hooks['visualization'] = vis
    prepare_cpu_distributed(cfg, args.launcher)
    runner = build_runner(cfg)
    if hasattr(runner, 'load_exact'):
        runner.load_exact(args.checkpoint)
    else:  # a config's own runner_type: the same exact load, without the runner's report
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        load_checkpoint(model, args.checkpoint, mode='exact')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    return runner.test()


if __name__ == '__main__':
    main()
