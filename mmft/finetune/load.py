"""Putting a checkpoint into a model: one entry point, two modes.

``load_checkpoint(model, source, mode=...)`` is the only way a checkpoint reaches
a model in mmft (``load_from`` in training, ``tools/test.py``, ``init_detector``,
``inspect_finetune.py``; backbone ``init_cfg`` uses the same exact mode from
:mod:`mmft.checkpoint.exact`):

- ``'exact'``: the checkpoint is the model's own. Every tensor must fit; a missing
  key, a shape mismatch, or class names that differ from the expected ones is an
  error naming the keys or classes and the fix.
- ``'finetune'``: the model has new heads. Steps, each accounted for in the
  :class:`LoadReport`:

  1. read the file safely, converting foreign formats (:func:`read_checkpoint`);
  2. keep what the checkpoint type restores: everything ('detection') or the
     backbone only ('classification': keys get ``backbone.`` when they lack it);
  3. drop ``exclude`` patterns (and presets, derived from the heads' declarations);
  4. copy class rows of the tensors the heads declare (``class_rows()``) for
     classes shared by name;
  5. copy every other tensor whose name and shape fit; a shape mismatch in a
     declared class-dependent tensor is expected (new class count), anywhere else
     suspicious.

Resuming never comes here: a checkpoint of the same run loads as it is.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from mmft.checkpoint import LoadedCheckpoint, read_checkpoint
from mmft.checkpoint.exact import checkpoint_classes, load_exact
from mmft.structures.class_rows import ClassRows, class_row_heads, find_class_rows
from .class_transfer import is_identity, match_classes, plan_class_transfer
from .config import FinetuneConfig
from .patterns import check_patterns_match, model_presets, select
from .report import LoadReport

BACKBONE = 'backbone.'
MODES = ('finetune', 'exact')


def _is_classification(loaded: LoadedCheckpoint, model_keys: Sequence[str]) -> bool:
    """An ImageNet checkpoint: converted as one, or keys that fit only the backbone
    (with or without ``backbone.``, e.g. torchvision's or mmpretrain's classifiers)."""
    if (loaded.meta or {}).get('source_model') == 'classification':
        return True
    keys = set(loaded.state_dict)
    if not keys:
        return False
    model = set(model_keys)
    if any(k.startswith(BACKBONE) for k in keys):
        shared = keys & model
        return bool(shared) and all(k.startswith(BACKBONE) for k in shared) and \
            len(shared) < len(keys)
    backbone = {k[len(BACKBONE):] for k in model if k.startswith(BACKBONE)}
    return len(keys & backbone) >= 0.5 * len(keys)


def _select_scope(loaded: LoadedCheckpoint, checkpoint_type: str, model_keys: Sequence[str],
                  report: LoadReport) -> Tuple[Dict[str, Tensor], Dict[str, str]]:
    """The checkpoint tensors this checkpoint type may restore, renamed for the model.

    Returns:
        ``(model-side name -> tensor, model-side name -> the file's own name)``.
    """
    state = dict(loaded.state_dict)
    if checkpoint_type != 'classification':
        report.scope_keys = list(model_keys)
        return state, {k: k for k in state}
    has_prefix = any(k.startswith(BACKBONE) for k in state)
    scoped: Dict[str, Tensor] = {}
    origin: Dict[str, str] = {}
    for key, value in state.items():
        if has_prefix and not key.startswith(BACKBONE):
            report.excluded.append(key)
            report.reasons[key] = "checkpoint_type='classification' restores the backbone only"
            continue
        name = key if has_prefix else BACKBONE + key
        scoped[name], origin[name] = value, key
    report.scope_keys = [k for k in model_keys if k.startswith(BACKBONE)]
    return scoped, origin


def _plan_class_rows(model_state: Dict[str, Tensor], ckpt: Dict[str, Tensor],
                     class_rows: Dict[str, ClassRows], cfg: FinetuneConfig,
                     old_classes: Optional[Tuple[str, ...]],
                     new_classes: Optional[Sequence[str]], report: LoadReport
                     ) -> Tuple[Dict[str, Tensor], Dict[str, str]]:
    """Decide the declared class-dependent tensors.

    Returns:
        ``(key -> tensor to load, key -> why it must not load as stored)``.
    """
    if not class_rows:
        return {}, {}
    if not old_classes or not new_classes:
        if cfg.class_transfer:
            for key in class_rows:
                report.reasons[key] = ('checkpoint has no class names; set '
                                       'finetune.source_classes to transfer rows of shared '
                                       'classes')
        return {}, {}  # rows load as stored when their shape fits: nothing says otherwise
    matches = match_classes(new_classes, old_classes, cfg.class_mapping, cfg.synonyms)
    if is_identity(matches, len(old_classes)):
        return {}, {}
    report.class_matches = matches
    if not cfg.class_transfer:
        reason = ('finetune.class_transfer=False: the class rows are re-initialised (the '
                  'checkpoint has other classes)')
        return {}, {k: reason for k in class_rows}
    if all(m.old_index is None for m in matches):
        report.no_class_matched = True
        reason = (f'no dataset class matched a checkpoint class (checkpoint: '
                  f'{list(old_classes)[:10]}...): the rows start from the initialisation')
        return {}, {k: reason for k in class_rows}
    moved, failed = plan_class_transfer(model_state, ckpt, class_rows, new_classes,
                                        old_classes, matches)
    share = sum(m.old_index is not None for m in matches) / len(matches)
    for key in moved:
        report.transferred.append(key)
        report.transferred_share[key] = share
    return moved, failed


def plan_load(model: nn.Module, loaded: LoadedCheckpoint, cfg: FinetuneConfig,
              new_classes: Optional[Sequence[str]] = None, source: str = ''
              ) -> Tuple[Dict[str, Tensor], LoadReport]:
    """Decide, key by key, what ``model`` takes from ``loaded`` (the 'finetune' mode).

    Args:
        model: the (unwrapped) detector, already initialised.
        loaded: what :func:`read_checkpoint` returned.
        cfg: the ``finetune`` options.
        new_classes: the dataset's class names (for class-aware transfer).
        source: the checkpoint path, for the report.

    Returns:
        ``(state_dict to load with strict=False, report)``.

    Raises:
        ValueError: an ``exclude`` entry matches no key of the model or the checkpoint.
    """
    model_state = model.state_dict()
    model_keys = list(model_state)
    ckpt_type = cfg.checkpoint_type
    if ckpt_type == 'auto':
        ckpt_type = 'classification' if _is_classification(loaded, model_keys) else 'detection'
    old_classes = checkpoint_classes(loaded, cfg.source_classes)
    report = LoadReport(source=source, source_format=loaded.format, checkpoint_type=ckpt_type,
                        source_classes=old_classes, num_model_keys=len(model_keys),
                        head_modules=[p for p, _ in class_row_heads(model)])
    ckpt, origin = _select_scope(loaded, ckpt_type, model_keys, report)

    all_keys = sorted(set(ckpt) | set(model_keys))
    presets = model_presets(model)
    check_patterns_match(all_keys, cfg.exclude, 'finetune.exclude', presets)
    for key in select(all_keys, cfg.exclude, require_match=False, presets=presets):
        if key not in report.excluded:
            report.excluded.append(key)
            report.reasons[key] = 'finetune.exclude'
    skip = set(report.excluded)
    common = [k for k in model_keys if k in ckpt and k not in skip]

    declared = find_class_rows(model)
    class_rows = {k: declared[k] for k in common if k in declared}
    to_load, failed = _plan_class_rows(model_state, ckpt, class_rows, cfg, old_classes,
                                       new_classes, report)
    report.reasons.update(failed)

    for key in common:
        if key in to_load:
            continue
        # rows that could not be matched to classes must not load in the file's order
        if ckpt[key].shape == model_state[key].shape and key not in failed:
            to_load[key] = ckpt[key]
            report.loaded.append(key)
            continue
        report.shapes[key] = (tuple(ckpt[key].shape), tuple(model_state[key].shape))
        if key in declared:
            report.skipped_expected.append(key)
        else:
            report.skipped_suspicious.append(key)
    report.missing = [k for k in model_keys if k not in ckpt and k not in skip]
    report.unexpected = [origin[k] for k in ckpt if k not in model_state and k not in skip]
    report.unexpected += [k for k in loaded.unconverted if k not in report.unexpected]
    for key in loaded.unconverted:
        report.reasons.setdefault(key, f'{loaded.format} key with no place in mmft\'s layout')
    report.scope_keys = [k for k in report.scope_keys if k not in skip]
    return to_load, report


@torch.no_grad()
def load_checkpoint(model: nn.Module, source: str, mode: str = 'finetune',
                    cfg: Optional[FinetuneConfig] = None,
                    classes: Optional[Sequence[str]] = None,
                    loaded: Optional[LoadedCheckpoint] = None,
                    dry_run: bool = False) -> LoadReport:
    """Read ``source`` (a path or URL) and put it into ``model`` (see the module docstring).

    Args:
        model: the (unwrapped) detector, initialised.
        source: the checkpoint file, ``https://`` URL or model-zoo name.
        mode: 'finetune' or 'exact'.
        cfg: the ``finetune`` options ('finetune' mode; defaults otherwise).
        classes: the dataset's class names: the new classes ('finetune'), the classes the
            checkpoint must have ('exact'; not checked when None).
        loaded: the already read checkpoint, to skip reading ``source`` again.
        dry_run: 'finetune' mode: plan and check, change nothing (``inspect_finetune.py``).

    Returns:
        The load report.

    Raises:
        ValueError: 'exact' mode and the checkpoint does not fit.
        LoadCheckError: 'finetune' mode and the ``min_loaded`` / ``min_backbone_loaded``
            / ``strict_backbone`` checks fail (its ``report`` says what would have
            loaded). Nothing is loaded then.
    """
    if mode not in MODES:
        raise ValueError(f'load mode must be one of {MODES}, got {mode!r}')
    cfg = cfg or FinetuneConfig()
    if loaded is None:
        loaded = read_checkpoint(source, source_format=cfg.source_format)
    if mode == 'exact':
        load_exact(model, loaded, source=str(source), expected_classes=classes)
        keys = list(model.state_dict())
        return LoadReport(source=str(source), source_format=loaded.format, mode='exact',
                          loaded=keys, scope_keys=keys, num_model_keys=len(keys),
                          source_classes=checkpoint_classes(loaded),
                          source_meta=dict(loaded.meta or {}), ema_weights=loaded.ema)
    state, report = plan_load(model, loaded, cfg, classes, source=str(source))
    report.source_meta = dict(loaded.meta or {})
    report.ema_weights = loaded.ema
    report.check(cfg.strict_backbone, cfg.min_loaded, cfg.min_backbone_loaded)
    if dry_run:
        return report
    incompatible = model.load_state_dict(state, strict=False)
    leftover = set(incompatible.unexpected_keys)
    if leftover:  # plan_load only hands over model keys
        raise RuntimeError(f'internal error: keys {sorted(leftover)[:5]} were not in the model')
    return report


def load_pretrained(model: nn.Module, filename: str, cfg: Optional[FinetuneConfig] = None,
                    new_classes: Optional[Sequence[str]] = None,
                    loaded: Optional[LoadedCheckpoint] = None) -> LoadReport:
    """The 'finetune' mode of :func:`load_checkpoint`."""
    return load_checkpoint(model, filename, 'finetune', cfg, new_classes, loaded)
