"""LoadReport: what happened to every key when a checkpoint met a model.

Every key of the model's state_dict and of the checkpoint lands in exactly one
bucket:

- ``loaded``: same name, same shape, copied as is;
- ``transferred``: a class-dependent tensor whose rows were copied class by class;
  it counts as restored only for the share of classes that matched one of the
  checkpoint's (``transferred_share``), and when no class matched at all the
  tensor is re-initialised (``no_class_matched``) and counts as not restored;
- ``skipped_expected``: shape differs in a class-dependent layer (a new class
  count): the head is re-initialised on purpose;
- ``skipped_suspicious``: shape differs anywhere else: the checkpoint and the
  model disagree about the architecture, which is almost always a mistake;
- ``excluded``: left out by ``finetune.exclude`` or by ``checkpoint_type``;
- ``missing``: in the model, not in the checkpoint;
- ``unexpected``: in the checkpoint (or a foreign file's keys that did not
  convert), not in the model.

Restored shares count weights only: buffers such as BatchNorm's
``num_batches_tracked`` say nothing about whether the right weights arrived.
"""
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from terminaltables import AsciiTable

from .class_transfer import ClassMatch, class_transfer_table

BUCKETS = ('loaded', 'transferred', 'skipped_expected', 'skipped_suspicious', 'excluded',
           'missing', 'unexpected')
_HEADERS = ('loaded', 'class-transferred', 'skipped (head)', 'skipped (SUSPICIOUS)',
            'excluded', 'missing', 'unexpected')


#: buffers that load from any checkpoint of the same layer type: not evidence of a good load
UNCOUNTED_SUFFIXES = ('num_batches_tracked',)


def module_group(key: str, head_modules: Sequence[str] = ()) -> str:
    """The report row of a key: the head that declares class rows when the key is
    inside one, else its top module."""
    for head in sorted(head_modules, key=len, reverse=True):
        if head and (key == head or key.startswith(head + '.')):
            return head
    return key.split('.', 1)[0]


def counts_as_weight(key: str) -> bool:
    return not key.endswith(UNCOUNTED_SUFFIXES)


class LoadCheckError(RuntimeError):
    """A load refused by :meth:`LoadReport.check`; ``report`` says what would have loaded."""

    def __init__(self, message: str, report: 'LoadReport') -> None:
        super().__init__(message)
        self.report = report


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
        mode: 'finetune' or 'exact' (see :mod:`mmft.finetune.load`).
        head_modules: module paths of the heads that declare class rows (report rows).
        transferred_share: transferred key -> share of its classes copied from the
            checkpoint.
        no_class_matched: class names are known on both sides and none matched.
        source_meta: the checkpoint's meta (for hooks that read it after the load).
        ema_weights: the checkpoint was saved with EMAHook and its averaged weights were
            loaded (not the raw training weights of its ``ema_state_dict``).
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
    mode: str = 'finetune'
    head_modules: List[str] = field(default_factory=list)
    transferred_share: Dict[str, float] = field(default_factory=dict)
    no_class_matched: bool = False
    source_meta: Dict = field(default_factory=dict)
    ema_weights: bool = False

    def bucket_of(self, key: str) -> str:
        hits = [b for b in BUCKETS if key in getattr(self, b)]
        if len(hits) != 1:
            raise KeyError(f'{key!r} is in buckets {hits}, expected exactly one')
        return hits[0]

    @property
    def restored(self) -> List[str]:
        return self.loaded + self.transferred

    def _fraction(self, keys: Sequence[str]) -> float:
        scope = [k for k in keys if counts_as_weight(k)]
        if not scope:
            return 0.0
        loaded = set(self.loaded)
        restored = sum(1.0 if k in loaded else self.transferred_share.get(k, 0.0)
                       for k in scope)
        return restored / len(scope)

    @property
    def restored_fraction(self) -> float:
        """Share of the in-scope model weights restored from the checkpoint (a
        transferred tensor counts for the share of its classes that matched)."""
        return self._fraction(self.scope_keys)

    @property
    def backbone_fraction(self) -> Optional[float]:
        """The same share for the backbone alone; None for a model without one."""
        keys = [k for k in self.scope_keys if k.startswith('backbone.')]
        return self._fraction(keys) if keys else None

    def num_restored_weights(self) -> int:
        return sum(counts_as_weight(k) for k in set(self.scope_keys).intersection(self.restored))

    def counts_by_module(self) -> 'OrderedDict[str, Dict[str, int]]':
        rows: 'OrderedDict[str, Dict[str, int]]' = OrderedDict()
        for bucket in BUCKETS:
            for key in getattr(self, bucket):
                counts = rows.setdefault(module_group(key, self.head_modules),
                                         dict.fromkeys(BUCKETS, 0))
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
        if self.ema_weights:
            lines.append('weights: the EMA (averaged) weights, which EMAHook saved as the '
                         "checkpoint's state_dict; its raw training weights (ema_state_dict) "
                         'are not used')
        classes = self.class_table()
        if classes:
            lines.append(classes)
        weights = [k for k in self.scope_keys if counts_as_weight(k)]
        lines.append(f'restored {self.num_restored_weights()}/{len(weights)} weight tensors in '
                     f'scope ({100 * self.restored_fraction:.1f}%, class-transferred tensors '
                     'counted by their share of matched classes)')
        if self.no_class_matched:
            lines.append(f'NO CLASS MATCHED: none of the dataset classes is among the '
                         f'checkpoint classes {list(self.source_classes or [])[:10]}; every '
                         'class row starts from the initialisation. Wrong checkpoint, or '
                         'name the correspondences in finetune.class_mapping.')
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

    def check(self, strict_backbone: bool = False, min_loaded: Optional[float] = None,
              min_backbone_loaded: Optional[float] = None) -> None:
        """Raise when the load looks wrong.

        Raises:
            RuntimeError: no weight restored at all; ``strict_backbone`` and a
                suspicious mismatch or a missing backbone key; less than
                ``min_loaded`` of the in-scope weights, or less than
                ``min_backbone_loaded`` of the backbone's, restored (the wrong checkpoint).
        """
        if strict_backbone:
            missing_backbone = [k for k in self.missing if k.startswith('backbone.')]
            problems = self.skipped_suspicious + missing_backbone
            if problems:
                raise LoadCheckError(
                    f'finetune.strict_backbone=True and the checkpoint {self.source} does not '
                    f'fit: {len(self.skipped_suspicious)} unexpected shape mismatch(es) '
                    f'{[self._describe(k) for k in self.skipped_suspicious[:5]]}, '
                    f'{len(missing_backbone)} missing backbone key(s) {missing_backbone[:5]}. '
                    'Check that model.backbone (depth, style) matches the checkpoint, or set '
                    'strict_backbone=False to skip these layers.', self)
        found = (f'Loaded {self.num_restored_weights()} weight tensors, missing '
                 f'{len(self.missing)}, unexpected {len(self.unexpected)} (first unexpected: '
                 f'{self.unexpected[:5]}), shape mismatches {len(self.shapes)}')
        if self.num_restored_weights() == 0 and min_backbone_loaded != 0 and min_loaded != 0:
            raise LoadCheckError(
                f'no weight of the model was restored from {self.source} ({self.source_format}'
                f'): it is empty or from another architecture. {found}. Check load_from; set '
                'finetune.min_backbone_loaded=0 if starting from it anyway is intended.', self)
        if min_loaded is not None and self.restored_fraction < min_loaded:
            raise LoadCheckError(
                f'only {100 * self.restored_fraction:.1f}% of the model weights in scope were '
                f'restored from {self.source} (finetune.min_loaded={min_loaded}); is it the '
                f'checkpoint of another architecture? {found}.', self)
        backbone = self.backbone_fraction
        if min_backbone_loaded is not None and backbone is not None and \
                backbone < min_backbone_loaded:
            raise LoadCheckError(
                f'only {100 * backbone:.1f}% of the backbone weights were restored from '
                f'{self.source} (finetune.min_backbone_loaded={min_backbone_loaded}, the '
                f'default); the backbone would train from its initialisation. Is it the '
                f'checkpoint of another backbone (depth, style)? {found}. Set '
                'finetune.min_backbone_loaded=0 (or lower) if this is intended.', self)


def _cell(count: int) -> str:
    return str(count) if count else '.'

