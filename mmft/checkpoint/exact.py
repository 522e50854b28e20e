"""The exact load: a checkpoint that must be the model's own, tensor for tensor.

Used by ``tools/test.py``, ``init_detector`` and backbone ``init_cfg``
(``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``): a missing key,
a shape mismatch or a class list that differs from the expected one stops the
load with an error naming the keys or classes and the fix, and nothing is
loaded. Keys of the file that the model lacks are returned for the caller to
log (a classification checkpoint's ``fc`` layer has no place in a backbone).
"""
from typing import Any, List, Optional, Sequence, Tuple

import torch
from torch import nn

from .reader import LoadedCheckpoint


def checkpoint_classes(loaded: LoadedCheckpoint,
                       override: Optional[Sequence[str]] = None) -> Optional[Tuple[str, ...]]:
    """Class names a checkpoint carries, newest convention first.

    ``override`` (the config's ``finetune.source_classes``) wins; then MMEngine /
    MMDetection 3.x ``meta.dataset_meta.classes``, converted foreign files'
    ``meta.classes`` and MMDetection 2.x ``meta.CLASSES``.
    """
    if override is not None:
        return tuple(override)
    meta = loaded.meta if isinstance(loaded.meta, dict) else {}
    dataset_meta = meta.get('dataset_meta')
    candidates = [dataset_meta.get('classes') if isinstance(dataset_meta, dict) else None,
                  meta.get('classes'), meta.get('CLASSES')]
    for classes in candidates:
        if isinstance(classes, str):
            classes = (classes,)  # MMDetection 2.x stored one class as a bare str
        if isinstance(classes, (list, tuple)) and classes and \
                all(isinstance(c, str) for c in classes):
            return tuple(classes)
    return None


def _strip(state: dict, prefix: Optional[str], source: str) -> dict:
    if not prefix:
        return state
    picked = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not picked:
        firsts = sorted({k.split('.', 1)[0] + '.' for k in state})[:10]
        raise KeyError(f'prefix {prefix!r} matches no key of {source}; its top-level '
                       f'prefixes are {firsts}. Fix init_cfg prefix (or drop it).')
    return picked


@torch.no_grad()
def load_exact(model: nn.Module, loaded: LoadedCheckpoint, source: str = '',
               prefix: Optional[str] = None,
               expected_classes: Optional[Sequence[str]] = None) -> List[str]:
    """Load ``loaded`` into ``model``, requiring every model tensor to come from it.

    Args:
        model: the module to fill (a whole detector, or a backbone with ``prefix``).
        loaded: what :func:`read_checkpoint` returned.
        source: the file or URL, for messages.
        prefix: take only keys under ``prefix`` (e.g. ``'backbone.'``), stripped.
        expected_classes: the class names the checkpoint must carry (when it carries
            any), e.g. the test dataset's.

    Returns:
        The file's keys that the model does not have (after ``prefix``) and that lie
        outside its modules (a classifier's ``fc``).

    Raises:
        ValueError: class names differ, tensors are missing, shapes differ, or the
            file has tensors inside the model's modules that the model lacks.
    """
    found = checkpoint_classes(loaded)
    if expected_classes is not None and found is not None and \
            tuple(found) != tuple(expected_classes):
        raise ValueError(_class_mismatch(source, found, tuple(expected_classes)))
    state = _strip(dict(loaded.state_dict), prefix, source)
    own = model.state_dict()
    bad_values = [k for k, v in state.items() if k in own and not isinstance(v, torch.Tensor)]
    if bad_values:
        raise TypeError(f'{source}: entries {bad_values[:5]} are not tensors '
                        f'({type(state[bad_values[0]]).__name__}); the file is not a '
                        'state_dict of this model')
    mismatched = [f'{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                  for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in state]
    # extra tensors inside the model's own modules (layer1.2.* for a shallower ResNet, a mask
    # head the config lacks) mean another architecture; a classifier's fc is just left over
    modules = {name for name, _ in model.named_modules()}
    inside = [k for k in state if k not in own and k.split('.', 1)[0] in modules]
    if mismatched or missing or inside:
        what = []
        if inside:
            what.append(f'{len(inside)} file tensor(s) inside the model\'s modules that the '
                        f'model lacks, e.g. {inside[:3]}')
        if mismatched:
            what.append(f'{len(mismatched)} shape mismatch(es), e.g. {mismatched[:3]}')
        if missing:
            what.append(f'{len(missing)} model tensor(s) not in the file, e.g. {missing[:3]}')
        raise ValueError(
            f'{source} does not fit the model built from the config: {"; ".join(what)}. '
            'Use the config the checkpoint was trained with (num_classes, depth, '
            'with_mask ...); to start a new model from it, fine-tune with load_from instead.')
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=True)
    return [k for k in state if k not in own]


def _class_mismatch(source: str, found: Tuple[str, ...], expected: Tuple[str, ...]) -> str:
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    detail: List[Any] = []
    if missing:
        detail.append(f'the data has {missing} which the checkpoint lacks')
    if extra:
        detail.append(f'the checkpoint has {extra[:10]} which the data lacks')
    if not detail:
        detail.append('same names in another order')
    return (f'{source} was trained on classes {list(found)[:20]} but the config\'s dataset has '
            f'{list(expected)[:20]} ({"; ".join(detail)}). Its class rows would be read as '
            'the wrong classes. Evaluate with the config the checkpoint was trained with, or '
            'fine-tune it on these classes first (load_from).')
