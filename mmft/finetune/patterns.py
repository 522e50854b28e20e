"""Name patterns for ``finetune.exclude`` and ``finetune.freeze``, and per-family presets.

A pattern selects state_dict keys (or parameter names) by one of three forms:

- ``'re:<regex>'``: a regular expression searched in the name
  (``'re:layer[34]'``);
- a wildcard with ``*``, ``?`` or ``[...]`` matched against the whole name
  (``'*layer4*'``, ``'backbone.layer[12].*'``), as PaddleDetection's
  ``finetune_exclude_pretrained_params``;
- a plain module path that selects the module and everything under it
  (``'backbone.layer1'`` selects ``backbone.layer1.0.conv1.weight``).

A preset stands for the model's class-dependent layers, the ones its heads
declare (``class_rows()``): ``'class_rows'`` for any model, or the family's own
name (the detector's ``finetune_preset``: ``'mask_rcnn'``, ``'retinanet'``, ...),
as PaddleDetection's per-family exclude lists. Presets are derived from the
model, so a new family brings its preset with its heads.
"""
import difflib
import fnmatch
import re
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Union

from torch import nn

from mmft.structures.class_rows import class_row_modules, find_class_rows

#: the preset every model has: all tensors its heads declare as class rows
CLASS_ROWS_PRESET = 'class_rows'

Patterns = Union[str, Sequence[str], None]


class NamePattern:
    """One compiled pattern (see the module docstring for the forms)."""

    def __init__(self, pattern: str) -> None:
        if not isinstance(pattern, str) or not pattern:
            raise TypeError(f'a name pattern must be a non-empty str, got {pattern!r}')
        self.pattern = pattern
        if pattern.startswith('re:'):
            try:
                self._regex = re.compile(pattern[3:])
            except re.error as exc:
                raise ValueError(f'bad regular expression in pattern {pattern!r}: {exc}') \
                    from None
            self._match = lambda name: self._regex.search(name) is not None
        elif any(c in pattern for c in '*?['):
            self._match = lambda name: fnmatch.fnmatchcase(name, pattern)
        else:
            prefix = pattern.rstrip('.') + '.'
            self._match = lambda name: name == pattern or name.startswith(prefix)

    def __call__(self, name: str) -> bool:
        return self._match(name)

    def __repr__(self) -> str:
        return f'NamePattern({self.pattern!r})'


def known_presets() -> Dict[str, str]:
    """Every family preset of the registered detectors: preset -> detector type."""
    from mmft.registry import MODELS  # patterns are used before any model is built
    MODELS.import_from_location()
    found = {CLASS_ROWS_PRESET: 'any detector'}
    for name, cls in MODELS.module_dict.items():
        preset = getattr(cls, 'finetune_preset', None)
        if isinstance(preset, str):
            found.setdefault(preset, name)
    return found


def model_presets(model: nn.Module) -> Dict[str, List[str]]:
    """The presets of ``model`` -> module paths of the tensors its heads declare as class rows.

    ``'class_rows'``: all of them; the detector's ``finetune_preset`` (``'mask_rcnn'``):
    all of them too; a head's own ``finetune_preset`` (SSD's head on the generic
    ``SingleStageDetector``): those under that head.
    """
    declared = class_row_modules(find_class_rows(model))
    presets = {CLASS_ROWS_PRESET: declared}
    for path, module in model.named_modules():
        name = getattr(module, 'finetune_preset', None)
        if isinstance(name, str):
            inside = [m for m in declared if not path or m == path or m.startswith(path + '.')]
            presets.setdefault(name, []).extend(m for m in inside if m not in presets[name])
    return presets


def expand_presets(patterns: Patterns,
                   presets: Optional[Mapping[str, Sequence[str]]] = None) -> List[str]:
    """A pattern list with preset names replaced by their patterns.

    Raises:
        ValueError: a preset of another family than the model's.
    """
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    presets = presets or {}
    out: List[str] = []
    for pattern in patterns:
        if pattern in presets:
            out.extend(presets[pattern])
            continue
        if not any(c in pattern for c in '.*?[:'):
            family = known_presets().get(pattern)
            if family is not None:
                raise ValueError(
                    f'preset {pattern!r} is the class-dependent layers of {family} models; '
                    f'this model has presets {sorted(presets)}: use one of those (or '
                    f"'{CLASS_ROWS_PRESET}', which fits any model)")
        out.append(pattern)
    return out


def compile_patterns(patterns: Patterns,
                     presets: Optional[Mapping[str, Sequence[str]]] = None) -> List[NamePattern]:
    return [NamePattern(p) for p in expand_presets(patterns, presets)]


def select(names: Iterable[str], patterns: Patterns, what: str = 'pattern',
           require_match: bool = True,
           presets: Optional[Mapping[str, Sequence[str]]] = None) -> List[str]:
    """The names that any pattern selects, in their original order.

    Args:
        names: candidate names (state_dict keys, parameter names).
        patterns: patterns or preset names.
        what: how the caller calls a pattern in errors (``'finetune.freeze'``).
        require_match: raise when an entry selects nothing (almost always a typo);
            a preset counts as matching when any of its patterns does.
        presets: the model's presets (:func:`model_presets`).

    Raises:
        ValueError: an entry selects nothing; the message lists the closest names.
    """
    names = list(names)
    if require_match:
        check_patterns_match(names, patterns, what, presets)
    compiled = compile_patterns(patterns, presets)
    return [n for n in names if any(p(n) for p in compiled)]


def check_patterns_match(names: Iterable[str], patterns: Patterns, what: str,
                         presets: Optional[Mapping[str, Sequence[str]]] = None) -> None:
    """Raise for the first entry of ``patterns`` that selects none of ``names``."""
    names = list(names)
    entries = [patterns] if isinstance(patterns, str) else list(patterns or [])
    for entry in entries:
        if any(p(n) for p in compile_patterns([entry], presets) for n in names):
            continue
        raise ValueError(
            f'{what} {entry!r} matches no name; closest names: '
            f'{_closest(entry, names)}. Patterns are wildcards '
            "('*layer4*'), module paths ('backbone.layer1'), 're:<regex>' or presets "
            f'{sorted(presets or [CLASS_ROWS_PRESET])}')


def _closest(pattern: str, names: List[str]) -> List[str]:
    stem = pattern[3:] if pattern.startswith('re:') else pattern.strip('*')
    modules = sorted({n.rsplit('.', 1)[0] for n in names})
    return difflib.get_close_matches(stem, modules, n=5, cutoff=0.3) or modules[:5]
