"""Load a pretrained checkpoint into a model with new heads: the fine-tuning load.

Steps, each accounted for in the :class:`LoadReport`:

1. read the file safely, converting foreign formats (``io.read_checkpoint``);
2. keep what the checkpoint type restores: everything ('detection') or the
   backbone only ('classification': keys get ``backbone.`` when they lack it);
3. drop ``exclude`` patterns;
4. copy class rows of class-dependent layers for classes shared by name;
5. copy every other tensor whose name and shape fit; a shape mismatch in a
   class-dependent layer is expected (new class count), anywhere else suspicious.

Resuming never comes here: a checkpoint of the same run loads as it is.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .class_transfer import is_identity, match_classes, plan_class_transfer, row_layout
from .config import FinetuneConfig
from .io import LoadedCheckpoint, read_checkpoint
from .patterns import check_patterns_match, select
from .report import LoadReport

BACKBONE = 'backbone.'


def checkpoint_classes(loaded: LoadedCheckpoint,
                       override: Optional[Sequence[str]] = None) -> Optional[Tuple[str, ...]]:
    """Class names of a checkpoint: the config's override, else its meta."""
    if override is not None:
        return tuple(override)
    meta = loaded.meta or {}
    classes = (meta.get('dataset_meta') or {}).get('classes') or meta.get('classes')
    return tuple(classes) if classes else None


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


def plan_load(model: nn.Module, loaded: LoadedCheckpoint, cfg: FinetuneConfig,
              new_classes: Optional[Sequence[str]] = None, source: str = ''
              ) -> Tuple[Dict[str, Tensor], LoadReport]:
    """Decide, key by key, what ``model`` takes from ``loaded``.

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
                        source_classes=old_classes, num_model_keys=len(model_keys))
    ckpt, origin = _select_scope(loaded, ckpt_type, model_keys, report)

    all_keys = sorted(set(ckpt) | set(model_keys))
    check_patterns_match(all_keys, cfg.exclude, 'finetune.exclude')
    for key in select(all_keys, cfg.exclude, require_match=False):
        if key not in report.excluded:
            report.excluded.append(key)
            report.reasons[key] = 'finetune.exclude'
    skip = set(report.excluded)
    common = [k for k in model_keys if k in ckpt and k not in skip]

    to_load: Dict[str, Tensor] = {}
    class_keys = [k for k in common if row_layout(model, k) is not None]
    failed: Dict[str, str] = {}
    if cfg.class_transfer and class_keys and old_classes and new_classes:
        matches = match_classes(new_classes, old_classes, cfg.class_mapping, cfg.synonyms)
        if not is_identity(matches, len(old_classes)):
            report.class_matches = matches
            moved, failed = plan_class_transfer(model, model_state, ckpt, class_keys,
                                                new_classes, old_classes, matches)
            to_load.update(moved)
            report.transferred.extend(moved)
            report.reasons.update(failed)
    elif class_keys and not old_classes and cfg.class_transfer:
        for key in class_keys:
            report.reasons[key] = ('checkpoint has no class names; set finetune.source_classes '
                                   'to transfer rows of shared classes')

    for key in common:
        if key in to_load:
            continue
        # rows that could not be matched to classes must not load in the file's order
        if ckpt[key].shape == model_state[key].shape and key not in failed:
            to_load[key] = ckpt[key]
            report.loaded.append(key)
            continue
        report.shapes[key] = (tuple(ckpt[key].shape), tuple(model_state[key].shape))
        if key in class_keys:
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
def load_pretrained(model: nn.Module, filename: str, cfg: Optional[FinetuneConfig] = None,
                    new_classes: Optional[Sequence[str]] = None,
                    loaded: Optional[LoadedCheckpoint] = None) -> LoadReport:
    """Read ``filename`` and load what fits into ``model`` (see the module docstring).

    Raises:
        RuntimeError: ``cfg.strict_backbone`` / ``cfg.min_loaded`` checks fail;
            nothing is loaded then.
    """
    cfg = cfg or FinetuneConfig()
    if loaded is None:
        loaded = read_checkpoint(filename, source_format=cfg.source_format)
    state, report = plan_load(model, loaded, cfg, new_classes, source=str(filename))
    report.check(cfg.strict_backbone, cfg.min_loaded)
    incompatible = model.load_state_dict(state, strict=False)
    leftover = set(incompatible.unexpected_keys)
    if leftover:  # plan_load only hands over model keys
        raise RuntimeError(f'internal error: keys {sorted(leftover)[:5]} were not in the model')
    return report
