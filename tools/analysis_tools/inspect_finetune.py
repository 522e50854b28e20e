"""Dry-run the fine-tuning load of a config: what loads, what transfers, what trains.

    python tools/analysis_tools/inspect_finetune.py CONFIG [--load-from CKPT]
        [--cfg-options k=v ...]

Builds the model exactly as tools/train.py would (num_classes from the data,
finetune.freeze), plans the load of ``load_from`` through the same path, and
prints the load report, the class-transfer table and the trainable / frozen
parameter counts per module; if ``strict_backbone`` / ``min_loaded`` would stop
the run, it says why after the report and exits with 1. Nothing is trained and
nothing is written.
"""
import argparse
import copy
from typing import Optional

from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from terminaltables import AsciiTable

from mmft.finetune.config import FinetuneConfig, resolve_num_classes
from mmft.finetune.freeze import freeze, frozen_modules_summary, parameter_counts
from mmft.finetune.load import load_checkpoint
from mmft.finetune.report import LoadCheckError
from mmft.registry import MODELS
from mmft.utils import register_all_modules


def inspect_finetune(cfg: Config, load_from: Optional[str] = None) -> str:
    """The dry run's text (see the module docstring)."""
    cfg = copy.deepcopy(cfg)
    classes = resolve_num_classes(cfg)
    ft = FinetuneConfig.from_cfg(cfg.get('finetune'))
    # the runner's order: build, freeze (FinetuneRunner.build_model), initialise, load
    model = MODELS.build(cfg.model)
    if ft.freeze:
        freeze(model, ft.freeze, norm_eval=ft.norm_eval)
    model.init_weights()
    lines = [f'dataset classes ({len(classes) if classes else "?"}): '
             f'{list(classes) if classes else "unknown"}']
    path = load_from or cfg.get('load_from')
    if path:
        # the runner's load, planned and checked but not applied
        try:
            report = load_checkpoint(model, path, 'finetune', ft, classes, dry_run=True)
            lines.append(report.summary())
        except LoadCheckError as exc:  # what would stop the run, after the report
            lines.append(exc.report.summary())
            lines.append(f'THE RUN WOULD STOP HERE: {exc}')
    else:
        lines.append('no load_from: the model starts from its initialisation')
    counts = parameter_counts(model)
    rows = [['module', 'trainable', 'frozen'], *frozen_modules_summary(model)]
    rows.append(['total', f'{counts["trainable"]:,}', f'{counts["frozen"]:,}'])
    table = AsciiTable(rows, title=' parameters (elements) ')
    table.inner_footing_row_border = True
    lines.append(table.table)
    for stage in ft.unfreeze:
        when = f'iter {stage.iter}' if stage.iter is not None else f'epoch {stage.epoch}'
        lines.append(f'unfreezes {stage.patterns} at {when}')
    return '\n'.join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description='Dry-run the fine-tuning load of a config')
    parser.add_argument('config')
    parser.add_argument('--load-from', help='checkpoint to inspect (default: load_from)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, as in tools/train.py')
    args = parser.parse_args(argv)
    # MMEngine logs every tensor's initialiser at INFO; the report is what matters here
    MMLogger.get_instance('mmft-inspect', log_level='WARNING')
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    text = inspect_finetune(cfg, args.load_from)
    print(text)
    if 'THE RUN WOULD STOP HERE' in text:
        raise SystemExit(1)


if __name__ == '__main__':
    main()
