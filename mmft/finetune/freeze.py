"""Freezing parameters by name pattern, and thawing them later.

Frozen means ``requires_grad=False``, set before the optimizer and DDP see the
model, so neither tracks the parameter and backward stops at the first
trainable layer. A BatchNorm whose parameters are all frozen also stays in eval
mode (its running statistics frozen too), whatever ``model.train()`` says:
updating statistics of a layer whose affine weights cannot adapt only shifts
its output away from what the next layer was trained on.
"""
import types
from typing import Collection, Dict, List, Optional, Sequence

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .patterns import Patterns, model_presets, select


def _stay_in_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    """``train()`` of a frozen norm layer: always eval mode."""
    return nn.Module.train(self, False)


def freeze(model: nn.Module, patterns: Patterns, norm_eval: bool = True) -> List[str]:
    """Freeze the parameters that ``patterns`` select.

    Args:
        model: the detector (unwrapped).
        patterns: wildcards / module paths / 're:' regexes (see ``patterns.py``).
        norm_eval: keep fully frozen BatchNorm layers in eval mode.

    Returns:
        Names of the parameters frozen by this call.

    Raises:
        ValueError: a pattern selects no parameter (a typo would otherwise
            silently train everything).
    """
    names = select((n for n, _ in model.named_parameters()), patterns, 'finetune.freeze',
                   presets=model_presets(model))
    params = dict(model.named_parameters())
    for name in names:
        params[name].requires_grad_(False)
    if norm_eval:
        keep_frozen_norms_in_eval(model)
    return names


def keep_frozen_norms_in_eval(model: nn.Module) -> List[str]:
    """Pin every BatchNorm without a trainable parameter to eval mode."""
    pinned = []
    for name, module in model.named_modules():
        if not isinstance(module, _BatchNorm):
            continue
        params = list(module.parameters(recurse=False))
        if params and not any(p.requires_grad for p in params):
            module.train = types.MethodType(_stay_in_eval, module)
            module.eval()
            pinned.append(name)
    return pinned


def unfreeze(model: nn.Module, patterns: Patterns,
             only: Optional[Collection[str]] = None) -> List[str]:
    """Make the frozen parameters that ``patterns`` select trainable again.

    Args:
        model: the detector (unwrapped).
        patterns: as for :func:`freeze`.
        only: restrict to these names (what ``finetune.freeze`` froze), so that
            parameters the model freezes itself (``backbone.frozen_stages``) stay frozen.

    Returns:
        Names of the parameters that were frozen and are now trainable.
    """
    frozen = [n for n, p in model.named_parameters()
              if not p.requires_grad and (only is None or n in only)]
    names = select(frozen, patterns, 'finetune.unfreeze', require_match=False)
    params = dict(model.named_parameters())
    for name in names:
        params[name].requires_grad_(True)
    for module in model.modules():
        if isinstance(module, _BatchNorm) and 'train' in vars(module) and \
                any(p.requires_grad for p in module.parameters(recurse=False)):
            del module.train  # back to the class's train()
    # the model's own rules (a backbone's norm_eval) decide the thawed layers' mode
    model.train(model.training)
    return names


def parameter_counts(model: nn.Module) -> Dict[str, int]:
    """Trainable and frozen parameter counts (elements, not tensors)."""
    counts = {'trainable': 0, 'frozen': 0}
    for p in model.parameters():
        counts['trainable' if p.requires_grad else 'frozen'] += p.numel()
    return counts


def frozen_modules_summary(model: nn.Module, depth: int = 2) -> List[Sequence[str]]:
    """Rows ``[module, trainable, frozen]`` (elements) per module ``depth`` levels deep."""
    groups: Dict[str, List[int]] = {}
    for name, p in model.named_parameters():
        key = '.'.join(name.split('.')[:depth])
        counts = groups.setdefault(key, [0, 0])
        counts[0 if p.requires_grad else 1] += p.numel()
    return [[k, f'{t:,}', f'{f:,}'] for k, (t, f) in groups.items()]
