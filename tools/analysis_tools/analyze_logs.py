"""Plot loss / metric curves and time the training of MMEngine runs.

    python tools/analysis_tools/analyze_logs.py plot_curve RUN [RUN ...]
        [--keys loss bbox_mAP] [--legend A B] [--title T] [--out curves.png]
    python tools/analysis_tools/analyze_logs.py cal_train_time RUN [RUN ...] [--include-outliers]

RUN is a json log (``<work_dir>/<timestamp>/vis_data/scalars.json`` or
``<timestamp>.json`` next to it) or a work_dir (its newest run is used).

MMEngine's json log has one object per line. Training lines carry ``epoch``
(epoch-based runs), ``iter`` (the global iteration), ``lr``, ``time`` and the
losses; validation lines carry the metrics, prefixed by the metric's name
(``coco/bbox_mAP``, ``pascal_voc/mAP``) and ``step`` (the epoch, or the
iteration for iteration-based runs), and no ``iter``.
"""
import argparse
import glob
import json
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


def find_json_log(path: str) -> str:
    """The json log of ``path``: itself, or a work_dir's newest run's."""
    if osp.isfile(path):
        return path
    for pattern in ('vis_data/scalars.json', '*/vis_data/scalars.json', '*/vis_data/*.json'):
        found = sorted(glob.glob(osp.join(path, pattern)))  # timestamps sort by time
        if found:
            return found[-1]
    raise FileNotFoundError(
        f'no MMEngine json log at {path!r}: pass <work_dir>/<timestamp>/vis_data/scalars.json '
        'or a work_dir of a run that logged with LoggerHook')


def load_json_log(path: str) -> List[dict]:
    """The records of one json log, in order (blank lines skipped)."""
    with open(find_json_log(path), encoding='utf-8') as f:
        return [json.loads(line) for line in f if line.strip()]


def _is_train(record: dict) -> bool:
    return 'iter' in record


def get_curve(records: Sequence[dict], key: str) -> Tuple[np.ndarray, np.ndarray, str]:
    """``(xs, ys, x_label)`` of ``key`` through a run.

    Training values are plotted against the global iteration; validation
    values against their step (epoch or iteration). A key without a ``/``
    also matches a validation metric's name: ``bbox_mAP`` finds ``coco/bbox_mAP``.
    """
    train = [r for r in records if _is_train(r) and key in r]
    if train:
        return (np.array([r['iter'] for r in train]), np.array([r[key] for r in train]), 'iter')
    val_key = key if any(key in r for r in records) else next(
        (k for r in records if not _is_train(r) for k in r if k.split('/')[-1] == key), None)
    val = [r for r in records if not _is_train(r) and val_key in r]
    if not val:
        available = sorted({k for r in records for k in r} - {'step', 'epoch', 'iter'})
        raise KeyError(f'{key!r} is not in the log; available keys: {available}')
    by_epoch = any('epoch' in r for r in records)
    return (np.array([r['step'] for r in val]), np.array([r[val_key] for r in val]),
            'epoch' if by_epoch else 'iter')


def plot_curve(logs: Sequence[str], keys: Sequence[str], out: Optional[str] = None,
               legend: Optional[Sequence[str]] = None, title: Optional[str] = None) -> None:
    """One panel per key, one line per run; saved to ``out`` or shown.

    Args:
        logs: json logs or work_dirs.
        keys: what to plot (``loss``, ``loss_cls``, ``lr``, ``bbox_mAP``, ...).
        out: image file to write; None opens a window.
        legend: one label per run, or (as MMDetection) one per run and key,
            run-major; default ``<log>_<key>``.
        title: figure title.
    """
    import matplotlib
    if out is not None:
        matplotlib.use('Agg')  # writing a file must not need a display
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if legend is not None and len(legend) not in (len(logs), len(logs) * len(keys)):
        raise ValueError(f'--legend has {len(legend)} labels; give one per run ({len(logs)}) '
                         f'or one per run and key ({len(logs) * len(keys)})')
    fig, axes = plt.subplots(len(keys), 1, figsize=(8, 3 * len(keys)), squeeze=False)
    for i, log in enumerate(logs):
        records = load_json_log(log)
        for j, key in enumerate(keys):
            xs, ys, x_label = get_curve(records, key)
            if legend is None:
                label = f'{log}_{key}'
            else:
                label = legend[i] if len(legend) == len(logs) else legend[i * len(keys) + j]
            ax = axes[j, 0]
            marker = 'o' if x_label == 'epoch' or len(xs) < 20 else None
            ax.plot(xs, ys, label=label, marker=marker, linewidth=1)
            ax.set_xlabel(x_label)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(key)
            ax.legend()
    if title is not None:
        fig.suptitle(title)
    fig.tight_layout()
    if out is None:
        plt.show()
    else:
        fig.savefig(out)
        print(f'saved the curves to {out}')
    plt.close(fig)


def cal_train_time(log: str, include_outliers: bool = False) -> Dict[str, float]:
    """Seconds per training iteration of one run, overall and per epoch.

    The first logged iteration of each epoch (data loader start-up) is left
    out unless ``include_outliers``.
    """
    per_epoch = defaultdict(list)
    for record in load_json_log(log):
        if _is_train(record) and 'time' in record:
            per_epoch[record.get('epoch', 1)].append(record['time'])
    if not per_epoch:
        raise KeyError(f'{log} has no training iterations with a time; was IterTimerHook '
                       'on and the LoggerHook interval shorter than an epoch?')
    times = {e: t if include_outliers or len(t) < 2 else t[1:] for e, t in per_epoch.items()}
    means = {e: float(np.mean(t)) for e, t in times.items()}
    slowest, fastest = max(means, key=means.get), min(means, key=means.get)
    stats = dict(slowest_epoch=slowest, slowest_time=means[slowest], fastest_epoch=fastest,
                 fastest_time=means[fastest], std_over_epochs=float(np.std(list(means.values()))),
                 average_iter_time=float(np.mean([x for t in times.values() for x in t])))
    print(f'-----Analyze train time of {log}-----')
    print(f'slowest epoch {slowest}, average time is {means[slowest]:.4f}')
    print(f'fastest epoch {fastest}, average time is {means[fastest]:.4f}')
    print(f'time std over epochs is {stats["std_over_epochs"]:.4f}')
    print(f'average iter time: {stats["average_iter_time"]:.4f} s/iter\n')
    return stats


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Analyze MMEngine json logs')
    tasks = parser.add_subparsers(dest='task', required=True)
    plot = tasks.add_parser('plot_curve', help='plot loss / metric curves')
    plot.add_argument('json_logs', nargs='+', help='json logs or work_dirs')
    plot.add_argument('--keys', nargs='+', default=['bbox_mAP'], help='keys to plot')
    plot.add_argument('--legend', nargs='+', help='one label per run (or per run and key)')
    plot.add_argument('--title', help='figure title')
    plot.add_argument('--out', help='image file to write (default: show a window)')
    timing = tasks.add_parser('cal_train_time', help='seconds per training iteration')
    timing.add_argument('json_logs', nargs='+', help='json logs or work_dirs')
    timing.add_argument('--include-outliers', action='store_true',
                        help="keep each epoch's first iteration")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.task == 'plot_curve':
        plot_curve(args.json_logs, args.keys, args.out, args.legend, args.title)
    else:
        for log in args.json_logs:
            cal_train_time(log, args.include_outliers)


if __name__ == '__main__':
    main()
