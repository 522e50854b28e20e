"""The embedded demo: generate data, pretrain, fine-tune three ways, evaluate, report.

    python tools/misc/run_demo.py [--model mask-rcnn|rtmdet-tiny] [--work-dir DIR]
                                  [--data-root data/shapes] [--force]

1. data: the synthetic shapes benchmark (:mod:`mmft.datasets.synthetic`) under
   ``--data-root``, generated when absent or made with other sizes or seed.
2. training, each run a ``tools/train.py`` subprocess with its log in ``<run dir>/train.log``:

   - ``pretrain``: the model's pretraining config (``--model``: ``mask-rcnn``,
     ``configs/finetune/shapes_pretrain.py``; ``rtmdet-tiny``,
     ``configs/finetune/shapes_pretrain_rtmdet_tiny.py``) on the 10-class source domain;
     skipped when the same run is cached in ``<work-dir>/pretrain`` (``--force`` reruns it);
   - its fine-tuning config (``shapes.py``, ``shapes_rtmdet_tiny.py``) on the 5-class target
     domain, three times with the same iterations, batch and seed: ``scratch`` (``load_from=None``), ``plain``
     fine-tuning (``finetune.class_transfer=False``: the class-dependent head layers start
     afresh, everything else is loaded) and ``transfer``, the recipe (class-aware head
     transfer).

   ``--jobs`` runs at a time (default 2), each with its share of the CPU threads: one
   process per core beats two threads per process on a small model, and far more so when
   another program takes a core. ``scratch`` does not need the pretraining and runs
   beside it.
``--incremental`` runs the incremental fine-tuning benchmark instead
(:mod:`tools.misc.incremental_demo`: 2 new classes from data labelling only those).

3. report, in the work dir: ``results.md`` (the tables printed at the end),
   ``results.json`` (every number), ``curves.png`` (val mAP against iteration) and
   ``predictions/*.png`` (ground truth | predictions of the recipe on val images).
"""
import argparse
import contextlib
import hashlib
import io
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData
from pycocotools.coco import COCO

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # run as a script: make tools.* importable, as the tests do
    sys.path.insert(0, REPO_ROOT)

from mmft.apis import inference_detector, init_detector  # noqa: E402
from mmft.datasets.synthetic import generate_shapes_benchmark  # noqa: E402
from mmft.finetune.class_transfer import match_classes  # noqa: E402
from mmft.structures import DetDataSample  # noqa: E402
from mmft.visualization import DetLocalVisualizer  # noqa: E402
from tools.analysis_tools.analyze_logs import load_json_log, plot_curve  # noqa: E402

PRETRAIN_CONFIG = osp.join(REPO_ROOT, 'configs/finetune/shapes_pretrain.py')
FINETUNE_CONFIG = osp.join(REPO_ROOT, 'configs/finetune/shapes.py')
METRICS = ('bbox', 'segm')


@dataclass(frozen=True)
class DemoModel:
    """A detector the demo compares: its pretraining and fine-tuning configs and metrics."""
    pretrain_config: str
    finetune_config: str
    metrics: Tuple[str, ...]
    work_dir: str  # the default --work-dir


DEMO_MODELS = {
    'mask-rcnn': DemoModel(PRETRAIN_CONFIG, FINETUNE_CONFIG, METRICS, 'work_dirs/demo'),
    'rtmdet-tiny': DemoModel(
        osp.join(REPO_ROOT, 'configs/finetune/shapes_pretrain_rtmdet_tiny.py'),
        osp.join(REPO_ROOT, 'configs/finetune/shapes_rtmdet_tiny.py'), ('bbox', ),
        'work_dirs/demo_rtmdet-tiny'),
}


@dataclass(frozen=True)
class Run:
    """One training run: folder name under the work dir, label, config and overrides."""
    name: str
    label: str
    config: str
    options: Dict[str, Any] = field(default_factory=dict)
    after: Optional[str] = None  # the run whose checkpoint this one loads
    # data-parallel processes (torchrun; gloo on a CPU), each with its share of the threads
    # and of the batch (which the options must set per process)
    processes: int = 1


def finetune_runs(checkpoint: str, after: Optional[str] = 'pretrain',
                  config: str = FINETUNE_CONFIG) -> List[Run]:
    """The three runs the demo compares, all with the recipe's schedule and seed."""
    return [
        Run('scratch', 'from scratch', config, {'load_from': None}),
        Run('plain', 'plain fine-tuning', config,
            {'load_from': checkpoint, 'finetune.class_transfer': False}, after),
        Run('transfer', 'class-aware transfer (recipe)', config, {'load_from': checkpoint},
            after),
    ]


def cli_options(options: Dict[str, Any]) -> List[str]:
    """``--cfg-options`` arguments (MMEngine's DictAction syntax) for config overrides."""
    return [f'{k}={v}' for k, v in options.items()]


# ----------------------------------------------------------------------------------- progress
class Clock:
    """Prints lines with the seconds since the demo started; safe from several threads."""

    def __init__(self) -> None:
        self.start = time.time()
        self._lock = threading.Lock()

    @property
    def elapsed(self) -> float:
        return time.time() - self.start

    def say(self, message: str, tag: str = '') -> None:
        with self._lock:
            print(f'[{self.elapsed:6.1f} s] {tag + " | " if tag else ""}{message}', flush=True)

    def stage(self, title: str) -> None:
        with self._lock:
            print(f'\n[{self.elapsed:6.1f} s] == {title}', flush=True)


# --------------------------------------------------------------------------------------- data
def data_sizes(num_train: int, num_val: int, target_num_train: int) -> Dict[str, Dict[str, int]]:
    return dict(source=dict(train=num_train, val=num_val),
                target=dict(train=target_num_train, val=num_val))


def data_is_current(root: str, sizes: Dict[str, Dict[str, int]], image_size: int,
                    seed: int) -> bool:
    """Whether ``root`` holds the benchmark with exactly these sizes and seed."""
    for domain, splits in sizes.items():
        for split, num in splits.items():
            ann_file = osp.join(root, domain, f'{split}.json')
            if not osp.isfile(ann_file):
                return False
            with open(ann_file, encoding='utf-8') as f:
                coco = json.load(f)
            info = coco.get('info', {})
            if (len(coco['images']), info.get('image_size'), info.get('seed')) != \
                    (num, image_size, seed):
                return False
    return True


def data_options(root: str) -> Dict[str, Any]:
    """Config overrides that point a shapes config at the domain folder ``root``."""
    root = root.rstrip('/') + '/'
    options = {f'{loader}.dataset.data_root': root
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    options.update({f'{ev}.ann_file': root + 'val.json'
                    for ev in ('val_evaluator', 'test_evaluator')})
    return options


def prepare_data(args: argparse.Namespace, clock: Clock) -> Dict[str, Dict[str, int]]:
    """Generate the benchmark unless ``args.data_root`` already holds it."""
    sizes = data_sizes(args.num_train, args.num_val, args.target_num_train)
    if data_is_current(args.data_root, sizes, args.image_size, args.seed):
        clock.say('already generated with these sizes and seed')
    else:
        generate_shapes_benchmark(args.data_root, num_train=args.num_train,
                                  num_val=args.num_val, image_size=args.image_size,
                                  seed=args.seed, target_num_train=args.target_num_train)
        clock.say(f'generated {sizes} images of {args.image_size} px')
    return sizes


# ----------------------------------------------------------------------------------- schedule
def schedule_options(config: str, max_iters: Optional[int] = None,
                     val_interval: Optional[int] = None) -> Dict[str, Any]:
    """Config overrides that shorten a config's iteration schedule, keeping its shape.

    Milestones scale with ``max_iters``, warm-up is cut at ``max_iters``, the checkpoint is
    saved at the end; ``val_interval`` replaces the config's (dynamic) evaluation intervals.
    """
    cfg = Config.fromfile(config)
    options: Dict[str, Any] = {}
    if max_iters is not None:
        old = cfg.train_cfg.max_iters
        options.update({'train_cfg.max_iters': max_iters,
                        'default_hooks.checkpoint.interval': max_iters})
        for i, scheduler in enumerate(cfg.param_scheduler):
            if 'milestones' in scheduler:
                options[f'param_scheduler.{i}.milestones'] = [
                    max(1, round(m * max_iters / old)) for m in scheduler.milestones]
            if scheduler.get('end', 0) > max_iters:
                options[f'param_scheduler.{i}.end'] = max_iters
        if val_interval is None and cfg.train_cfg.get('val_interval', 0) > max_iters:
            val_interval = max_iters
    if val_interval is not None:
        options.update({'train_cfg.val_interval': val_interval,
                        'train_cfg.dynamic_intervals': None})
    return options


def final_checkpoint(work_dir: str, config: str, max_iters: Optional[int] = None) -> str:
    """Where IterBasedTrainLoop's last checkpoint of ``config`` lands in ``work_dir``."""
    iters = max_iters if max_iters is not None else Config.fromfile(config).train_cfg.max_iters
    return osp.join(work_dir, f'iter_{iters}.pth')


# --------------------------------------------------------------------------------- train runs
_TRAIN_LINE = re.compile(r'Iter\(train\) \[\s*(\d+)/(\d+)\].*?eta: (\S+).*?\s+loss: ([\d.]+)')
_VAL_LINE = re.compile(r'Iter\(val\) \[\d+/\d+\].*?coco/bbox_mAP: ([\d.]+)'
                       r'(?:.*?coco/segm_mAP: ([\d.]+))?')


def progress_line(line: str) -> Optional[str]:
    """A short line for the demo's output from one line of a train.py log, or None."""
    match = _TRAIN_LINE.search(line)
    if match:
        return f'iter {match.group(1)}/{match.group(2)}  loss {match.group(4)}  ' \
               f'eta {match.group(3)}'
    match = _VAL_LINE.search(line)
    if match:
        segm = f'  segm mAP {match.group(2)}' if match.group(2) else ''
        return f'val: bbox mAP {match.group(1)}{segm}'
    return None


def train(run: Run, work_dir: str, clock: Clock, threads: int = 1) -> float:
    """``python tools/train.py CONFIG --work-dir DIR --cfg-options ...`` in a fresh
    ``work_dir``, echoing its progress; the whole log goes to ``work_dir/train.log``.

    Returns:
        The run's wall time in seconds.

    Raises:
        RuntimeError: the run failed; the message has the end of its log.
    """
    start = time.time()
    shutil.rmtree(work_dir, ignore_errors=True)  # no stale checkpoint or log is read later
    os.makedirs(work_dir)
    launcher = [] if run.processes == 1 else [
        '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={run.processes}']
    cmd = [sys.executable, *launcher, 'tools/train.py', osp.relpath(run.config, REPO_ROOT),
           '--work-dir', work_dir, *(['--launcher', 'pytorch'] if launcher else [])]
    if run.options:
        cmd += ['--cfg-options', *cli_options(run.options)]
    clock.say('$ python ' + ' '.join(cmd[1:]), run.name)
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    env.setdefault('OMP_NUM_THREADS', str(max(1, threads // run.processes)))
    log_file = osp.join(work_dir, 'train.log')
    tail: List[str] = []
    with open(log_file, 'w', encoding='utf-8') as log, subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env) as proc:
        for line in proc.stdout:
            log.write(line)
            tail = (tail + [line.rstrip()])[-30:]
            short = progress_line(line)
            if short is not None:
                clock.say(short, run.name)
    if proc.returncode != 0:
        raise RuntimeError(f'{run.name}: {" ".join(cmd)} failed with exit code '
                           f'{proc.returncode}; the end of its log ({log_file}):\n' +
                           '\n'.join(tail))
    clock.say(f'done in {time.time() - start:.0f} s', run.name)
    return time.time() - start


def train_all(runs: Sequence[Run], work_root: str, clock: Clock, jobs: int) -> Dict[str, float]:
    """Run ``runs`` ``jobs`` at a time, each after the run it loads; ``{name: seconds}``.

    A run waits for ``run.after`` in its worker: runs start in list order, so that one has
    already started by then and no worker waits for a run that has none left.
    """
    threads = max(1, (os.cpu_count() or 1) // jobs)
    futures: Dict[str, Future] = {}

    def work(run: Run) -> float:
        if run.after in futures:
            futures[run.after].result()  # raises if it failed
        return train(run, osp.join(work_root, run.name), clock, threads)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for run in runs:
            futures[run.name] = pool.submit(work, run)
    return {name: round(f.result(), 1) for name, f in futures.items()}


# ------------------------------------------------------------------------------------ results
def val_curve(work_dir: str) -> Dict[int, Dict[str, float]]:
    """``{iteration: {metric: value}}`` of every validation of a run (``coco/`` dropped)."""
    curve = {}
    for record in load_json_log(work_dir):
        if 'iter' not in record and 'step' in record:  # validation records have no 'iter'
            curve[int(record['step'])] = {k.split('/', 1)[1]: v for k, v in record.items()
                                          if k.startswith('coco/')}
    if not curve:
        raise RuntimeError(f'no validation results in the log of {work_dir}; the run must '
                           'evaluate at least once (train_cfg.val_interval <= max_iters)')
    return curve


def _ap(value: Optional[float]) -> str:
    """An AP for a table; '-' for a class without ground truth (COCOeval's -1, or NaN)."""
    return '-' if value is None or not value >= 0 else f'{value:.3f}'


def _table(rows: Sequence[Sequence[str]]) -> str:
    """A markdown table; the first row is the header."""
    lines = ['| ' + ' | '.join(rows[0]) + ' |', '|' + '---|' * len(rows[0])]
    return '\n'.join(lines + ['| ' + ' | '.join(r) + ' |' for r in rows[1:]])


def comparison_table(curves: Dict[str, Dict[int, Dict[str, float]]], labels: Dict[str, str],
                     metrics: Sequence[str] = METRICS) -> str:
    """mAP (e.g. bbox / segm) of each run at each evaluated iteration."""
    steps = sorted(set.intersection(*(set(c) for c in curves.values())))
    rows = [['iteration'] + [f'{labels[n]}: {" / ".join(metrics)}' for n in curves]]
    for step in steps:
        rows.append([str(step)] + [' / '.join(_ap(c[step][f'{m}_mAP']) for m in metrics)
                                   for c in curves.values()])
    return _table(rows)


def class_table(curves: Dict[str, Dict[int, Dict[str, float]]], labels: Dict[str, str],
                classes: Sequence[str], origin: Dict[str, str],
                metrics: Sequence[str] = METRICS) -> str:
    """Per-class AP (e.g. bbox / segm) of each run at its last evaluation."""
    rows = [['class', 'head rows from'] +
            [f'{labels[n]}: {" / ".join(metrics)}' for n in curves]]
    for name in classes:
        cells = []
        for curve in curves.values():
            last = curve[max(curve)]
            cells.append(' / '.join(_ap(last.get(f'{m}_{name}_precision')) for m in metrics))
        rows.append([name, origin[name]] + cells)
    return _table(rows)


def class_origins(target: Sequence[str], source: Sequence[str],
                  mapping: Dict[str, str]) -> Dict[str, str]:
    """Where the recipe's class-aware transfer takes each class's head rows from."""
    out = {}
    for m in match_classes(target, source, mapping):
        out[m.new_name] = 'new (initialised)' if m.old_name is None else \
            f'{m.old_name} ({m.how})'
    return out


# ------------------------------------------------------------------------------- predictions
def _gt_instances(coco: COCO, img_id: int, classes: Sequence[str]) -> InstanceData:
    """The annotations of one image as drawable instances (xyxy boxes, bool masks)."""
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
    label = {c['id']: classes.index(c['name']) for c in coco.loadCats(coco.getCatIds())}
    boxes = np.array([a['bbox'] for a in anns], np.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    info = coco.imgs[img_id]
    masks = np.zeros((len(anns), info['height'], info['width']), bool)
    for i, ann in enumerate(anns):
        masks[i] = coco.annToMask(ann).astype(bool)
    return InstanceData(bboxes=torch.from_numpy(boxes), masks=torch.from_numpy(masks),
                        labels=torch.tensor([label[a['category_id']] for a in anns]))


def _upscaled(instances: InstanceData, factor: int) -> InstanceData:
    """Boxes and masks of ``instances`` on an image ``factor`` times larger."""
    out = instances.clone()
    out.bboxes = instances.bboxes * factor
    if 'masks' in instances:
        masks = torch.as_tensor(instances.masks).bool()
        out.masks = masks.repeat_interleave(factor, 1).repeat_interleave(factor, 2)
    return out


def draw_predictions(config: str, checkpoint: str, cfg_options: Dict[str, Any], data_root: str,
                     out_dir: str, num_images: int = 4, scale: int = 4,
                     score_thr: float = 0.5) -> List[str]:
    """Ground truth | predictions of ``checkpoint`` on the first val images, as PNGs.

    Images are drawn ``scale`` times larger than they are, so that labels stay readable.
    """
    model = init_detector(config, checkpoint, cfg_options=dict(cfg_options))
    classes = model.dataset_meta['classes']
    # MMEngine keeps one visualizer per name; its arguments count at creation only
    visualizer = DetLocalVisualizer.get_instance('run_demo') if \
        DetLocalVisualizer.check_instance_created('run_demo') else \
        DetLocalVisualizer.get_instance('run_demo', line_width=2)
    visualizer.dataset_meta = model.dataset_meta
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' progress chatter
        coco = COCO(osp.join(data_root, 'val.json'))
    written = []
    for img_id in sorted(coco.imgs)[:num_images]:
        path = osp.join(data_root, 'val', coco.imgs[img_id]['file_name'])
        result = inference_detector(model, path)
        sample = DetDataSample()
        sample.gt_instances = _upscaled(_gt_instances(coco, img_id, classes), scale)
        sample.pred_instances = _upscaled(result.pred_instances, scale)
        image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        out_file = osp.join(out_dir, f'val_{img_id:04d}.png')
        visualizer.add_datasample(str(img_id), image, sample, out_file=out_file,
                                  pred_score_thr=score_thr)
        written.append(out_file)
    return written


# ------------------------------------------------------------------------------------- report
def report(args: argparse.Namespace, curves: Dict[str, Dict[int, Dict[str, float]]],
           labels: Dict[str, str]) -> Dict[str, Any]:
    """Tables (markdown), curves and prediction PNGs of the fine-tuning runs."""
    model = DEMO_MODELS[args.model]
    metrics = model.metrics
    ft_cfg = Config.fromfile(model.finetune_config)
    pre_cfg = Config.fromfile(model.pretrain_config)
    origin = class_origins(ft_cfg.classes, pre_cfg.classes,
                           dict(ft_cfg.finetune.get('class_mapping', {})))
    curves_png = osp.join(args.work_dir, 'curves.png')
    plot_curve([osp.join(args.work_dir, name) for name in labels],
               [f'{m}_mAP' for m in metrics], out=curves_png, legend=list(labels.values()),
               title=f'{args.model}: target val mAP, same iterations, batch and seed')
    target_root = osp.join(args.data_root, 'target')
    recipe = final_checkpoint(osp.join(args.work_dir, 'transfer'), model.finetune_config,
                              args.finetune_iters)
    pngs = draw_predictions(model.finetune_config, recipe, data_options(target_root),
                            target_root, osp.join(args.work_dir, 'predictions'),
                            num_images=args.num_vis)
    pre = curves['pretrain'][max(curves['pretrain'])]
    finetuned = {name: curves[name] for name in labels}
    names = ' / '.join(metrics)
    markdown = '\n\n'.join([
        f'{args.model} pretrained on the source domain: val ' +
        ', '.join(f'{m} mAP {_ap(pre[f"{m}_mAP"])}' for m in metrics) +
        f' (iteration {max(curves["pretrain"])}).',
        f'#### Target val mAP ({names}) at each evaluation, same iterations, batch and seed',
        comparison_table(finetuned, labels, metrics),
        f'#### Per-class AP ({names}) at the last evaluation (CocoMetric classwise)',
        class_table(finetuned, labels, ft_cfg.classes, origin, metrics),
        f'Curves: `{curves_png}`; the recipe\'s predictions (ground truth | predicted): '
        f'`{osp.join(args.work_dir, "predictions")}/`.',
    ]) + '\n'
    return dict(markdown=markdown, class_origin=origin, curves_png=curves_png, predictions=pngs)


# --------------------------------------------------------------------------------------- main
def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='The mmft demo on generated data')
    parser.add_argument('--model', default='mask-rcnn', choices=sorted(DEMO_MODELS),
                        help='the detector pretrained and fine-tuned')
    parser.add_argument('--work-dir',
                        help='runs (pretrain/, scratch/, plain/, transfer/: emptied before '
                        'each run) and results go here (default: work_dirs/demo for '
                        'mask-rcnn, work_dirs/demo_<model> for the others)')
    parser.add_argument('--data-root', default='data/shapes', help='the generated data')
    parser.add_argument('--force', action='store_true',
                        help='pretrain again even when the checkpoint is cached')
    parser.add_argument('--jobs', type=int, default=2, help='training runs at a time')
    data = parser.add_argument_group('data (generated again when these change)')
    data.add_argument('--num-train', type=int, default=800, help='source train images')
    data.add_argument('--target-num-train', type=int, default=100, help='target train images')
    data.add_argument('--num-val', type=int, default=100, help='val images per domain')
    data.add_argument('--image-size', type=int, default=96, help='image side in pixels')
    data.add_argument('--seed', type=int, default=0, help='seed of the data')
    short = parser.add_argument_group('shorter runs (default: the configs\')')
    short.add_argument('--pretrain-iters', type=int, help='pretraining iterations')
    short.add_argument('--finetune-iters', type=int, help='iterations of each fine-tuning run')
    short.add_argument('--val-interval', type=int, help='evaluate every N fine-tuning iterations')
    short.add_argument('--batch-size', type=int, help='training batch size of every run')
    parser.add_argument('--num-vis', type=int, default=4, help='val images drawn')
    parser.add_argument('--incremental', action='store_true',
                        help='instead: add 2 new shape classes to the pretrained model from '
                             'data labelling only those (tools/misc/incremental_demo.py)')
    parser.add_argument('--incremental-num-train', type=int, default=300,
                        help='train images of the --incremental data (12 classes)')
    # 400, not the main demo's 100: 100 val images hold only ~34 pentagons and arrows, too
    # few for new-class AP to be compared across runs within 10%
    parser.add_argument('--incremental-num-val', type=int, default=400,
                        help='val images of the --incremental data (12 classes)')
    parser.add_argument('--ablations', action='store_true',
                        help='--incremental: also the runs with one piece switched off or '
                             'changed (5 more runs)')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f'--jobs must be >= 1, got {args.jobs}')
    if args.incremental and args.model != 'mask-rcnn':
        parser.error(f'--model {args.model} with --incremental: the incremental benchmark '
                     'has its own models; drop --model')
    if args.work_dir is None:
        args.work_dir = DEMO_MODELS[args.model].work_dir
    return args


def plan_runs(args: argparse.Namespace) -> List[Run]:
    """Pretraining, then the three fine-tunings, with the command line's data and schedules."""
    model = DEMO_MODELS[getattr(args, 'model', 'mask-rcnn')]
    batch = {'train_dataloader.batch_size': args.batch_size} if args.batch_size else {}
    pretrain = Run('pretrain', 'pretraining', model.pretrain_config, {
        **data_options(osp.join(args.data_root, 'source')), **batch,
        **schedule_options(model.pretrain_config, args.pretrain_iters)})
    checkpoint = final_checkpoint(osp.join(args.work_dir, pretrain.name),
                                  model.pretrain_config, args.pretrain_iters)
    options = {**data_options(osp.join(args.data_root, 'target')), **batch,
               **schedule_options(model.finetune_config, args.finetune_iters,
                                  args.val_interval)}
    return [pretrain] + [Run(r.name, r.label, r.config, {**r.options, **options}, r.after)
                         for r in finetune_runs(checkpoint, pretrain.name,
                                                model.finetune_config)]


def pretrain_stamp(args: argparse.Namespace, sizes: Dict[str, Any], run: Run) -> dict:
    """What a cached pretraining checkpoint must have been made with: data, config (model),
    options and, for a data-parallel run, its processes."""
    config_text = Config.fromfile(run.config).pretty_text
    stamp = dict(data=sizes, image_size=args.image_size, seed=args.seed,
                 config_sha1=hashlib.sha1(config_text.encode()).hexdigest(),
                 options=cli_options(run.options))
    if run.processes != 1:
        stamp['processes'] = run.processes
    return stamp


def is_cached(checkpoint: str, stamp_file: str, stamp: dict) -> bool:
    """Whether ``checkpoint`` exists and was made as ``stamp`` (data, options) says."""
    if not (osp.isfile(checkpoint) and osp.isfile(stamp_file)):
        return False
    with open(stamp_file, encoding='utf-8') as f:
        return json.load(f) == stamp


def run_demo(args: argparse.Namespace) -> Dict[str, Any]:
    """All stages (see the module docstring); returns what ``results.json`` holds."""
    clock = Clock()
    args.work_dir, args.data_root = osp.abspath(args.work_dir), osp.abspath(args.data_root)
    os.makedirs(args.work_dir, exist_ok=True)
    clock.stage(f'1/3 data: synthetic shapes in {args.data_root}')
    sizes = prepare_data(args, clock)

    clock.stage(f'2/3 train {args.model}: pretrain on the source domain (10 classes), '
                'fine-tune on the target domain (5 classes) three ways; '
                f'{args.jobs} runs at a time')
    planned = plan_runs(args)
    pretrain = planned[0]
    checkpoint = planned[-1].options['load_from']
    stamp_file = osp.join(args.work_dir, 'pretrain_stamp.json')
    stamp = pretrain_stamp(args, sizes, pretrain)
    cached = not args.force and is_cached(checkpoint, stamp_file, stamp)
    if cached:
        clock.say(f'cached: {checkpoint} (--force pretrains again)', pretrain.name)
    elif osp.isfile(stamp_file):
        os.remove(stamp_file)  # written again once the new pretraining has succeeded
    seconds = train_all(planned[1:] if cached else planned, args.work_dir, clock, args.jobs)
    if not cached:
        with open(stamp_file, 'w', encoding='utf-8') as f:
            json.dump(stamp, f, indent=1)

    clock.stage('3/3 evaluate and report')
    labels = {r.name: r.label for r in planned}
    curves = {name: val_curve(osp.join(args.work_dir, name)) for name in labels}
    finetuned = {name: label for name, label in labels.items() if name != pretrain.name}
    reported = report(args, curves, finetuned)
    results = dict(
        model=args.model,
        runs={r.name: dict(label=r.label, options=cli_options(r.options),
                           seconds=seconds.get(r.name), cached=r.name not in seconds,
                           curve={str(k): v for k, v in curves[r.name].items()})
              for r in planned},
        data=dict(root=args.data_root, images=sizes, image_size=args.image_size,
                  seed=args.seed),
        class_origin=reported['class_origin'], curves_png=reported['curves_png'],
        predictions=reported['predictions'], jobs=args.jobs,
        total_seconds=round(clock.elapsed, 1))
    ran = ', '.join(f'{name} {t:.0f} s' for name, t in seconds.items())
    markdown = reported['markdown'] + (
        f'\nData: {sizes["source"]["train"]} source and {sizes["target"]["train"]} target '
        f'train images, {sizes["target"]["val"]} val images per domain, {args.image_size} px, '
        f'seed {args.seed}. Wall time: {results["total_seconds"]:.0f} s in all ({ran}; '
        f'{args.jobs} runs at a time on {os.cpu_count()} CPU cores).\n')
    with open(osp.join(args.work_dir, 'results.md'), 'w', encoding='utf-8') as f:
        f.write(markdown)
    with open(osp.join(args.work_dir, 'results.json'), 'w', encoding='utf-8') as f:
        json.dump(results, f, indent=1)
    print('\n' + markdown)
    clock.say(f'done in {clock.elapsed:.0f} s: results.md, results.json, curves.png and '
              f'predictions/ are in {args.work_dir}')
    return results


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    if args.incremental:
        from tools.misc import incremental_demo
        args.work_dir, args.data_root = osp.abspath(args.work_dir), osp.abspath(args.data_root)
        os.makedirs(args.work_dir, exist_ok=True)
        return incremental_demo.run(args, sys.modules[__name__], Clock())
    return run_demo(args)


if __name__ == '__main__':
    main()
