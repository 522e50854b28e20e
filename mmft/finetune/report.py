"""LoadReport: what happened to every key when a checkpoint met a model.

Every key of the model's state_dict and of the checkpoint lands in exactly one
bucket:

- ``loaded``: same name, same shape, copied as is;
- ``transferred``: a class-dependent layer whose rows were copied class by class;
- ``skipped_expected``: shape differs in a class-dependent layer (a new class
  count): the head is re-initialised on purpose;
- ``skipped_suspicious``: shape differs anywhere else: the checkpoint and the
  model disagree about the architecture, which is almost always a mistake;
- ``excluded``: left out by ``finetune.exclude`` or by ``checkpoint_type``;
- ``missing``: in the model, not in the checkpoint;
- ``unexpected``: in the checkpoint (or a foreign file's keys that did not
  convert), not in the model.
"""
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from terminaltables import AsciiTable

from .class_transfer import ClassMatch, class_transfer_table

BUCKETS = ('loaded', 'transferred', 'skipped_expected', 'skipped_suspicious', 'excluded',
           'missing', 'unexpected')
_HEADERS = ('loaded', 'class-transferred', 'skipped (head)', 'skipped (SUSPICIOUS)',
            'excluded', 'missing', 'unexpected')


def module_group(key: str) -> str:
    """The report row of a key: its top module, or two levels inside RoI heads
    (``roi_head.bbox_head`` and ``roi_head.mask_head`` are what users look for)."""
    parts = key.split('.')
    depth = 2 if parts[0].endswith('roi_head') and len(parts) > 2 else 1
    return '.'.join(parts[:depth])


@dataclass
class LoadReport:
    """The outcome of loading ``source`` into a model (see the module docstring).

    Attributes:
        source: the checkpoint path.
        source_format: 'mmengine', 'torchvision', 'detectron2', 'caffe', ...
        checkpoint_type: 'detection' or 'classification'.
        shapes: key -> (checkpoint shape, model shape) for skipped keys.
        reasons: key -> why it was skipped / excluded / not transferred.
        class_matches: new class -> old class, when classes were matched.
        source_classes: the checkpoint's class names, if known.
        num_model_keys: size of the model's state_dict.
        scope_keys: keys the checkpoint was expected to provide (the whole
            model, or the backbone for a classification checkpoint).
    """
    source: str = ''
    source_format: str = ''
    checkpoint_type: str = 'detection'
    loaded: List[str] = field(default_factory=list)
    transferred: List[str] = field(default_factory=list)
    skipped_expected: List[str] = field(default_factory=list)
    skipped_suspicious: List[str] = field(default_factory=list)
    excluded: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    shapes: Dict[str, Tuple[tuple, tuple]] = field(default_factory=dict)
    reasons: Dict[str, str] = field(default_factory=dict)
    class_matches: List[ClassMatch] = field(default_factory=list)
    source_classes: Optional[Tuple[str, ...]] = None
    num_model_keys: int = 0
    scope_keys: List[str] = field(default_factory=list)

    def bucket_of(self, key: str) -> str:
        hits = [b for b in BUCKETS if key in getattr(self, b)]
        if len(hits) != 1:
            raise KeyError(f'{key!r} is in buckets {hits}, expected exactly one')
        return hits[0]

    @property
    def restored(self) -> List[str]:
        return self.loaded + self.transferred

    @property
    def restored_fraction(self) -> float:
        """Share of the in-scope model tensors that came from the checkpoint."""
        scope = set(self.scope_keys)
        if not scope:
            return 0.0
        return len(scope.intersection(self.restored)) / len(scope)

    def counts_by_module(self) -> 'OrderedDict[str, Dict[str, int]]':
        rows: 'OrderedDict[str, Dict[str, int]]' = OrderedDict()
        for bucket in BUCKETS:
            for key in getattr(self, bucket):
                counts = rows.setdefault(module_group(key), dict.fromkeys(BUCKETS, 0))
                counts[bucket] += 1
        return rows

    def table(self) -> str:
        """Tensors per module and bucket, with a total row."""
        data = [['module', *_HEADERS]]
        totals = dict.fromkeys(BUCKETS, 0)
        for group, counts in self.counts_by_module().items():
            data.append([group, *(_cell(counts[b]) for b in BUCKETS)])
            for b in BUCKETS:
                totals[b] += counts[b]
        data.append(['total', *(str(totals[b]) for b in BUCKETS)])
        table = AsciiTable(data, title=f' load_from: {self.source} ({self.source_format}, '
                                       f'{self.checkpoint_type}) ')
        table.inner_footing_row_border = True
        return table.table

    def class_table(self) -> Optional[str]:
        if not self.class_matches:
            return None
        return AsciiTable(class_transfer_table(self.class_matches),
                          title=' class-aware head transfer ').table

    def summary(self) -> str:
        """The table, the class table, and a line per suspicious or unusual finding."""
        lines = [self.table()]
        classes = self.class_table()
        if classes:
            lines.append(classes)
        restored = len(set(self.scope_keys).intersection(self.restored))
        lines.append(f'restored {restored}/{len(self.scope_keys)} tensors in scope '
                     f'({100 * self.restored_fraction:.1f}%)')
        if self.skipped_expected:
            lines.append('re-initialised on purpose (class-dependent layers): '
                         + ', '.join(self._describe(k) for k in self.skipped_expected))
        for key in self.skipped_suspicious:
            lines.append(f'SUSPICIOUS shape mismatch: {self._describe(key)}; the checkpoint '
                         'and the model disagree about this layer (wrong depth, width or '
                         'config?). finetune.strict_backbone=True makes this an error.')
        return '\n'.join(lines)

    def _describe(self, key: str) -> str:
        if key in self.shapes:
            ckpt, model = self.shapes[key]
            return f'{key} {list(ckpt)} -> {list(model)}'
        return key

    def full_text(self) -> str:
        """Every key, bucket by bucket: what goes to the work_dir."""
        lines = [self.summary(), '']
        for bucket, title in zip(BUCKETS, _HEADERS):
            keys = getattr(self, bucket)
            lines.append(f'## {title} ({len(keys)})')
            for key in keys:
                reason = self.reasons.get(key)
                lines.append(f'  {self._describe(key)}' + (f'  # {reason}' if reason else ''))
        return '\n'.join(lines) + '\n'

    def check(self, strict_backbone: bool = False, min_loaded: Optional[float] = None) -> None:
        """Raise when the load looks wrong.

        Raises:
            RuntimeError: ``strict_backbone`` and a suspicious mismatch or a
                missing backbone key; or less than ``min_loaded`` of the
                in-scope tensors restored (the wrong checkpoint).
        """
        if strict_backbone:
            missing_backbone = [k for k in self.missing if k.startswith('backbone.')]
            problems = self.skipped_suspicious + missing_backbone
            if problems:
                raise RuntimeError(
                    f'finetune.strict_backbone=True and the checkpoint {self.source} does not '
                    f'fit: {len(self.skipped_suspicious)} unexpected shape mismatch(es) '
                    f'{[self._describe(k) for k in self.skipped_suspicious[:5]]}, '
                    f'{len(missing_backbone)} missing backbone key(s) {missing_backbone[:5]}. '
                    'Check that model.backbone (depth, style) matches the checkpoint, or set '
                    'strict_backbone=False to skip these layers.')
        if min_loaded is not None and self.restored_fraction < min_loaded:
            raise RuntimeError(
                f'only {100 * self.restored_fraction:.1f}% of the model tensors in scope were '
                f'restored from {self.source} (finetune.min_loaded={min_loaded}); is it the '
                f'checkpoint of another architecture? Loaded {len(self.restored)}, missing '
                f'{len(self.missing)}, unexpected {len(self.unexpected)} (first unexpected: '
                f'{self.unexpected[:5]}).')


def _cell(count: int) -> str:
    return str(count) if count else '.'

