"""Name patterns for ``finetune.exclude`` and ``finetune.freeze``, and per-family presets.

A pattern selects state_dict keys (or parameter names) by one of three forms:

- ``'re:<regex>'``: a regular expression searched in the name
  (``'re:fc_(cls|reg)'``);
- a wildcard with ``*``, ``?`` or ``[...]`` matched against the whole name
  (``'*fc_cls*'``, ``'backbone.layer[12].*'``), as PaddleDetection's
  ``finetune_exclude_pretrained_params``;
- a plain module path that selects the module and everything under it
  (``'backbone.layer1'`` selects ``backbone.layer1.0.conv1.weight``).

A name in :data:`EXCLUDE_PRESETS` (``'mask_rcnn'``) stands for that model
family's class-dependent layers.
"""
import difflib
import fnmatch
import re
from typing import Dict, Iterable, List, Sequence, Tuple, Union

#: Model family -> the layers whose outputs depend on the class list: what to leave out of a
#: checkpoint when the new heads are to start from scratch. Key names follow MMDetection 3.x.
EXCLUDE_PRESETS: Dict[str, Tuple[str, ...]] = {
    'faster_rcnn': ('roi_head.bbox_head.fc_cls', 'roi_head.bbox_head.fc_reg'),
    'mask_rcnn': ('roi_head.bbox_head.fc_cls', 'roi_head.bbox_head.fc_reg',
                  'roi_head.mask_head.conv_logits'),
    # Cascade R-CNN regresses class-agnostically (4 rows): its fc_reg loads as it is
    'cascade_rcnn': ('re:^roi_head\\.bbox_head\\.\\d+\\.fc_cls\\.',
                     're:^roi_head\\.mask_head\\.\\d+\\.conv_logits\\.'),
    'retinanet': ('bbox_head.retina_cls',),
    'fcos': ('bbox_head.conv_cls',),
    'ssd': ('bbox_head.cls_convs',),
    'yolov3': ('bbox_head.convs_pred',),
}

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


def expand_presets(patterns: Patterns) -> List[str]:
    """A pattern list with preset names replaced by their patterns."""
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    out: List[str] = []
    for pattern in patterns:
        out.extend(EXCLUDE_PRESETS.get(pattern, (pattern,)))
    return out


def compile_patterns(patterns: Patterns) -> List[NamePattern]:
    return [NamePattern(p) for p in expand_presets(patterns)]


def select(names: Iterable[str], patterns: Patterns, what: str = 'pattern',
           require_match: bool = True) -> List[str]:
    """The names that any pattern selects, in their original order.

    Args:
        names: candidate names (state_dict keys, parameter names).
        patterns: patterns or preset names.
        what: how the caller calls a pattern in errors (``'finetune.freeze'``).
        require_match: raise when an entry selects nothing (almost always a typo);
            a preset counts as matching when any of its patterns does.

    Raises:
        ValueError: an entry selects nothing; the message lists the closest names.
    """
    names = list(names)
    if require_match:
        check_patterns_match(names, patterns, what)
    compiled = compile_patterns(patterns)
    return [n for n in names if any(p(n) for p in compiled)]


def check_patterns_match(names: Iterable[str], patterns: Patterns, what: str) -> None:
    """Raise for the first entry of ``patterns`` that selects none of ``names``."""
    names = list(names)
    entries = [patterns] if isinstance(patterns, str) else list(patterns or [])
    for entry in entries:
        if any(p(n) for p in compile_patterns([entry]) for n in names):
            continue
        raise ValueError(
            f'{what} {entry!r} matches no name; closest names: '
            f'{_closest(entry, names)}. Patterns are wildcards '
            "('*fc_cls*'), module paths ('backbone.layer1'), 're:<regex>' or presets "
            f'{sorted(EXCLUDE_PRESETS)}')


def _closest(pattern: str, names: List[str]) -> List[str]:
    stem = pattern[3:] if pattern.startswith('re:') else pattern.strip('*')
    modules = sorted({n.rsplit('.', 1)[0] for n in names})
    return difflib.get_close_matches(stem, modules, n=5, cutoff=0.3) or modules[:5]
