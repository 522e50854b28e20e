"""``run_demo.py --incremental``: add 2 shape classes to the 10-class pretrained model.

1. data under ``<data-root>/incremental`` (source domain, 12 classes): ``train.json`` labels
   every shape, ``train_new.json`` the same images with only the new classes labelled,
   ``val.json`` every shape;
2. a pretraining on the main demo's source data and config, as 2 data-parallel processes,
   in ``<work-dir>/inc_pretrain`` (cached as in the main demo; alone, on every core), then
   runs of ``configs/finetune/shapes_incremental.py`` from its checkpoint, same schedule and
   seed:
   ``plain`` (new labels only, no teacher: it forgets), ``incremental`` (pseudo-labels +
   dense and RoI distillation), ``joint`` (all 12 classes labelled: the upper bound) and,
   with ``--ablations``, the incremental recipe with one piece switched off or changed;
3. the pretrained model evaluated on the same val images (old classes), and a table of
   old-class AP (and its share of the pretrained model's), new-class AP (and its share of
   plain fine-tuning's) and their harmonic mean, in ``<work-dir>/incremental_results.md``.
"""
import json
import multiprocessing
import os
import os.path as osp
import resource
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Dict, List, Tuple

from mmengine.config import Config

from mmft.datasets.synthetic import SOURCE_CLASSES, generate_shapes_dataset

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO_ROOT, 'configs/finetune/shapes_incremental.py')
#: the benchmark's own pretraining: the main demo's config and data, as 2 data-parallel
#: processes of 4 images each on 2 or more cores (the main demo's runs 2 threads in one
#: process, 1.6x slower: a 96 px model keeps a second thread half idle). Its own folder:
#: neither demo overwrites the other's cached checkpoint.
PRETRAIN_RUN, PRETRAIN_PROCESSES = 'inc_pretrain', 2
NEW_CLASSES = ('pentagon', 'arrow')
UNION = tuple(SOURCE_CLASSES) + NEW_CLASSES


def prepare_data(root: str, num_train: int, num_val: int, image_size: int, seed: int) -> dict:
    """Generate the data (unless present with these sizes); returns the sizes."""
    stamp = dict(num_train=num_train, num_val=num_val, image_size=image_size, seed=seed)
    stamp_file = osp.join(root, 'stamp.json')
    if osp.isfile(stamp_file):
        with open(stamp_file, encoding='utf-8') as f:
            if json.load(f) == stamp:
                return stamp
    for split, num in (('train', num_train), ('val', num_val)):
        generate_shapes_dataset(root, classes=UNION, num_images=num, image_size=image_size,
                                seed=seed, domain='source', split_name=split, progress=False)
    with open(osp.join(root, 'train.json'), encoding='utf-8') as f:
        full = json.load(f)
    new_ids = {c['id'] for c in full['categories'] if c['name'] in NEW_CLASSES}
    only_new = dict(full, categories=[c for c in full['categories'] if c['id'] in new_ids],
                    annotations=[a for a in full['annotations'] if a['category_id'] in new_ids])
    with open(osp.join(root, 'train_new.json'), 'w', encoding='utf-8') as f:
        json.dump(only_new, f)
    with open(stamp_file, 'w', encoding='utf-8') as f:
        json.dump(stamp, f)
    return stamp


def _tuple(names) -> str:
    return '(' + ','.join(names) + ')'  # MMEngine's DictAction reads this as a tuple


#: the incremental recipe with one piece switched off: name, label, options
ABLATIONS = (
    ('inc_no_pseudo', 'ablation: no pseudo-labels', {'pseudo_labels': False}),
    ('inc_no_distill', 'ablation: no distillation', {'distill': False}),
    ('inc_no_roi', 'ablation: no RoI distillation', {'distill_roi': False}),
    ('inc_roi_l2', "ablation: ILOD's L2 on the RoI logits, not unbiased",
     {'distill_roi_loss': 'l2'}),
    ('inc_new_rois', 'ablation: RoI classifier distilled on new objects too',
     {'distill_roi_new_iou': None}),
)


def incremental_runs(run_cls, checkpoint: str, data_root: str, common: Dict[str, Any],
                     after: str, ablations: bool = False) -> List[Any]:
    """plain / incremental [/ ablations] / joint, as ``run_demo.Run`` objects."""
    root = data_root.rstrip('/') + '/'
    base = {'load_from': checkpoint, 'train_dataloader.dataset.data_root': root,
            'val_dataloader.dataset.data_root': root,
            'test_dataloader.dataset.data_root': root, **common}
    off = [run_cls(name, label, CONFIG, {**base, **{f'finetune.incremental.{k}': v
                                                    for k, v in options.items()}}, after)
           for name, label, options in ABLATIONS] if ablations else []
    return [
        run_cls('inc_plain', 'plain fine-tuning (new labels only)', CONFIG,
                {**base, 'finetune.incremental.pseudo_labels': False,
                 'finetune.incremental.distill': False}, after),
        run_cls('inc_incremental', 'incremental (pseudo-labels + distillation)', CONFIG,
                dict(base), after),
        *off,
        run_cls('inc_joint', 'joint training (all 12 labelled)', CONFIG,
                {**base, 'finetune.incremental': False,
                 'train_dataloader.dataset.ann_file': 'train.json',
                 'train_dataloader.dataset.metainfo.classes': _tuple(UNION)}, after),
    ]


def evaluate_pretrained(checkpoint: str, data_root: str, work_dir: str) -> Dict[str, float]:
    """The pretrained 10-class model on the val images, old classes only."""
    from mmft.engine import FinetuneRunner
    cfg = Config.fromfile(CONFIG)
    root = data_root.rstrip('/') + '/'
    cfg.merge_from_dict({
        'finetune.incremental': False, 'load_from': checkpoint, 'work_dir': work_dir,
        'test_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.metainfo.classes': tuple(SOURCE_CLASSES),
        'train_dataloader.dataset.metainfo.classes': tuple(SOURCE_CLASSES),
        'test_evaluator.old_classes': tuple(SOURCE_CLASSES)})
    metrics = FinetuneRunner.from_cfg(cfg).test()
    return {k.split('/', 1)[1]: v for k, v in metrics.items() if k.startswith('coco/')}


def _evaluate_pretrained_quietly(checkpoint: str, data_root: str, work_dir: str,
                                 log_file: str) -> Dict[str, float]:
    """:func:`evaluate_pretrained` in a child process, on one thread, its console in
    ``log_file`` (the demo's own progress lines stay readable)."""
    import torch
    os.makedirs(osp.dirname(log_file), exist_ok=True)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)  # stdout and stderr hold it now
    torch.set_num_threads(1)
    return evaluate_pretrained(checkpoint, data_root, work_dir)


def results_table(pretrained: Dict[str, float], final: Dict[str, Dict[str, float]],
                  labels: Dict[str, str]) -> Tuple[str, Dict[str, Any]]:
    """The markdown table and its numbers (bbox and segm)."""
    rows = ['| run | metric | old-class AP | % of pretrained | new-class AP | % of plain | '
            'harmonic mean |', '|---|---|---|---|---|---|---|']
    numbers: Dict[str, Any] = {'pretrained': pretrained}
    rows += [f'| pretrained (10 classes) | {m} | {pretrained[f"{m}_old_mAP"]:.3f} | 100% | - '
             '| - | - |' for m in ('bbox', 'segm')]
    for name, metrics in final.items():
        numbers[name] = metrics
        for m in ('bbox', 'segm'):
            old, new = metrics[f'{m}_old_mAP'], metrics[f'{m}_new_mAP']
            ref_old = pretrained[f'{m}_old_mAP']
            ref_new = final['inc_plain'][f'{m}_new_mAP']
            share_old = f'{100 * old / ref_old:.0f}%' if ref_old > 0 else '-'
            share_new = f'{100 * new / ref_new:.0f}%' if ref_new > 0 else '-'
            rows.append(f'| {labels[name]} | {m} | {old:.3f} | {share_old} | {new:.3f} | '
                        f'{share_new} | {metrics[f"{m}_hmean_mAP"]:.3f} |')
    return '\n'.join(rows) + '\n', numbers


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its finished children (the runs)."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                 resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def run(args, run_demo_module, clock) -> Dict[str, Any]:
    """The ``--incremental`` demo (see the module docstring)."""
    rd = run_demo_module
    data_root = osp.join(args.data_root, 'incremental')
    clock.stage(f'1/3 data: 12-class shapes in {data_root} (train_new.json labels only '
                f'{list(NEW_CLASSES)})')
    sizes = rd.prepare_data(args, clock)  # the pretraining's source domain
    stamp = prepare_data(data_root, args.incremental_num_train, args.incremental_num_val,
                         args.image_size, args.seed)
    clock.stage('2/3 train: pretraining (cached when current), then plain, incremental and '
                'joint fine-tuning')
    main = rd.plan_runs(args)[0]
    processes = PRETRAIN_PROCESSES if (os.cpu_count() or 1) >= PRETRAIN_PROCESSES else 1
    batch = args.batch_size or Config.fromfile(main.config).train_dataloader.batch_size
    if batch % processes:
        processes = 1  # the batch is split evenly, or not at all
    pretrain = rd.Run(PRETRAIN_RUN, main.label, main.config,
                      {**main.options, 'train_dataloader.batch_size': batch // processes},
                      processes=processes)
    checkpoint = rd.final_checkpoint(osp.join(args.work_dir, pretrain.name),
                                     rd.PRETRAIN_CONFIG, args.pretrain_iters)
    stamp_file = osp.join(args.work_dir, f'{PRETRAIN_RUN}_stamp.json')
    pre_stamp = rd.pretrain_stamp(args, sizes, pretrain)
    cached = not args.force and rd.is_cached(checkpoint, stamp_file, pre_stamp)
    common = {**({'train_dataloader.batch_size': args.batch_size} if args.batch_size else {}),
              **rd.schedule_options(CONFIG, args.finetune_iters)}
    runs = incremental_runs(rd.Run, checkpoint, data_root, common, pretrain.name,
                            ablations=args.ablations)
    seconds = {}
    if not cached:  # alone, with every core: the fine-tuning runs all wait for it
        seconds = rd.train_all([pretrain], args.work_dir, clock, 1)
        with open(stamp_file, 'w', encoding='utf-8') as f:
            json.dump(pre_stamp, f, indent=1)
    # the pretrained model's evaluation runs beside the fine-tunings, on one thread, not
    # after them (spawned: a forked child could inherit a busy OpenMP pool)
    eval_dir = osp.join(args.work_dir, 'inc_pretrained_eval')
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn')) as pool:
        evaluation = pool.submit(_evaluate_pretrained_quietly, checkpoint, data_root,
                                 eval_dir, osp.join(eval_dir, 'console.log'))
        seconds.update(rd.train_all(runs, args.work_dir, clock, args.jobs))
        clock.stage('3/3 evaluate and report')
        pretrained = evaluation.result()
    final = {}
    for r in runs:
        curve = rd.val_curve(osp.join(args.work_dir, r.name))
        final[r.name] = curve[max(curve)]
    table, numbers = results_table(pretrained, final, {r.name: r.label for r in runs})
    cpu = _cpu_seconds()
    ran = ', '.join(f'{name} {t:.0f} s' for name, t in seconds.items())
    load = os.getloadavg()
    # the demo itself keeps up to max(cores, jobs) threads busy (one per run when jobs > cores)
    busy = ': above what the demo runs, other programs shared the cores' if \
        load[1] > max(os.cpu_count() or 1, args.jobs) else ''
    markdown = (table + f'\nData: {stamp["num_train"]} train images (12 classes; the plain and '
                f'incremental runs see only {list(NEW_CLASSES)} labelled), {stamp["num_val"]} '
                f'val images, {args.image_size} px, seed {args.seed}; pretraining '
                f'{sizes["source"]["train"]} source images. Wall time '
                f'{clock.elapsed:.0f} s ({ran}; '
                f'{args.jobs} runs at a time on {os.cpu_count()} CPU cores), CPU time '
                f'{cpu:.0f} s; load average at the end {load[0]:.1f} / {load[1]:.1f} / '
                f'{load[2]:.1f} (1 / 5 / 15 min){busy}.\n')
    with open(osp.join(args.work_dir, 'incremental_results.md'), 'w', encoding='utf-8') as f:
        f.write(markdown)
    with open(osp.join(args.work_dir, 'incremental_results.json'), 'w', encoding='utf-8') as f:
        json.dump(dict(numbers=numbers, seconds=seconds, data=stamp,
                       wall_seconds=round(clock.elapsed, 1), cpu_seconds=round(cpu, 1),
                       load_average=load, runs={r.name: r.label for r in runs}), f, indent=1)
    print('\n' + markdown)
    return numbers
