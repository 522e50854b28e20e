"""How a class-dependent tensor's rows map to classes: what heads declare.

A head whose outputs depend on the class list says, for each such parameter,
which rows (first dimension) belong to which class, by returning
``{parameter name: ClassRows}`` from a ``class_rows()`` method. Class-aware
transfer, exclude presets, ``num_classes='auto'``, the load report and the
converters read these declarations; none of them knows a layer name.

Row layout of a declared tensor (first dimension), in ``groups`` equal blocks
(one per anchor, per level, ...)::

    block g = [ prefix rows | (background) | class 0 | class 1 | ... | (background) ]
               class-free     if 'first'    per_class rows each       if 'last'

Examples, for ``n`` classes (MMDetection 3.x layouts):

=============================  ==========================================================
``fc_cls`` (softmax)           ``ClassRows(n, background='last')``: ``n + 1`` rows
``fc_reg``                     ``ClassRows(n, per_class=4)``: rows ``4c .. 4c + 3``
``conv_logits`` (masks)        ``ClassRows(n)``
RetinaNet ``retina_cls``       ``ClassRows(n, groups=A)``: anchor ``a``, class ``c`` at
                               row ``a * n + c`` (sigmoid, no background)
SSD ``cls_convs.i``            ``ClassRows(n, groups=A_i, background='last')``
YOLOv3 ``convs_pred.i``        ``ClassRows(n, groups=3, prefix=5)``: 4 box rows and one
                               objectness row, then the classes, per anchor
torchvision ``cls_score``      ``ClassRows(91, background='first')`` (COCO ids)
=============================  ==========================================================

Rows of a class that is new to the model keep the model's own initialisation
(e.g. the focal-loss prior bias ``-log((1 - p) / p)`` of sigmoid heads), so a
head's ``init_weights`` is where a new class's starting point is decided.
"""
from dataclasses import dataclass, replace
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

BACKGROUND_POSITIONS = (None, 'first', 'last')
ACTIVATIONS = ('softmax', 'sigmoid')


@dataclass(frozen=True)
class ClassRows:
    """The class layout of one tensor's first dimension (see the module docstring).

    Attributes:
        num_classes: foreground classes.
        per_class: consecutive rows per class (4 for box deltas).
        groups: repeated blocks (anchors, levels); classes are innermost.
        prefix: class-independent rows at the start of each block (YOLOv3's 5).
        background: None, 'first' or 'last': one background row per block.
        activation: 'softmax' or 'sigmoid' scores; says how the rows are read,
            for reports (transfer copies rows either way).
    """
    num_classes: int
    per_class: int = 1
    groups: int = 1
    prefix: int = 0
    background: Optional[str] = None
    activation: str = 'sigmoid'

    def __post_init__(self) -> None:
        if self.background not in BACKGROUND_POSITIONS:
            raise ValueError(f'ClassRows.background must be one of {BACKGROUND_POSITIONS}, '
                             f'got {self.background!r}')
        if self.activation not in ACTIVATIONS:
            raise ValueError(f'ClassRows.activation must be one of {ACTIVATIONS}, got '
                             f'{self.activation!r}')
        for name in ('num_classes', 'per_class', 'groups'):
            if int(getattr(self, name)) < 1:
                raise ValueError(f'ClassRows.{name} must be >= 1, got {getattr(self, name)}')
        if self.prefix < 0:
            raise ValueError(f'ClassRows.prefix must be >= 0, got {self.prefix}')

    @property
    def block_size(self) -> int:
        return self.prefix + self.num_classes * self.per_class + int(self.background is not None)

    @property
    def num_rows(self) -> int:
        return self.groups * self.block_size

    def _class_start(self) -> int:
        return self.prefix + int(self.background == 'first')

    def rows_of(self, index: int) -> Tensor:
        """Row indices of class ``index`` in every block, block by block."""
        if not 0 <= index < self.num_classes:
            raise IndexError(f'class index {index} out of range for {self.num_classes} classes')
        start = self._class_start() + index * self.per_class
        offsets = torch.arange(self.per_class) + start
        return (torch.arange(self.groups)[:, None] * self.block_size + offsets).flatten()

    def background_rows(self) -> Tensor:
        """Row indices of the background row of every block (empty without one)."""
        if self.background is None:
            return torch.zeros(0, dtype=torch.long)
        at = self.prefix if self.background == 'first' else \
            self.prefix + self.num_classes * self.per_class
        return torch.arange(self.groups) * self.block_size + at

    def prefix_rows(self) -> Tensor:
        """Row indices of the class-independent rows of every block."""
        return (torch.arange(self.groups)[:, None] * self.block_size
                + torch.arange(self.prefix)).flatten()

    def with_classes(self, num_classes: int) -> 'ClassRows':
        return replace(self, num_classes=num_classes)

    def fit(self, num_rows: int, num_classes: int) -> Optional['ClassRows']:
        """This layout for another tensor of ``num_rows`` rows and ``num_classes`` classes.

        The same blocks, prefix and rows per class; the background row as declared or,
        failing that, toggled (a softmax checkpoint feeding a sigmoid head or back).
        None when no such layout has ``num_rows`` rows.
        """
        # MMDetection's softmax heads put background last: try that before 'first'
        options = [self.background] + [b for b in ('last', None, 'first') if b != self.background]
        for background in options:
            activation = self.activation if background == self.background else \
                ('softmax' if background is not None else 'sigmoid')
            candidate = replace(self, num_classes=num_classes, background=background,
                                activation=activation)
            if candidate.num_rows == num_rows:
                return candidate
        return None

    def describe(self) -> str:
        """A short human-readable form for reports: '81 rows: 80 classes + background'."""
        parts = [f'{self.num_classes} classes']
        if self.per_class > 1:
            parts.append(f'{self.per_class} rows each')
        if self.prefix:
            parts.append(f'{self.prefix} class-free rows first')
        if self.background:
            parts.append(f'background {self.background}')
        where = f' x {self.groups} blocks' if self.groups > 1 else ''
        return f'{self.num_rows} rows: {", ".join(parts)}{where} ({self.activation})'


def copy_class_rows(target: Tensor, target_rows: ClassRows, source: Tensor,
                    source_rows: ClassRows, source_index: Sequence[Optional[int]]) -> Tensor:
    """``target`` with the rows of matched classes (and background, prefix) from ``source``.

    Args:
        target: the new model's initialised tensor; its rows of unmatched classes stay.
        target_rows: ``target``'s layout.
        source: the checkpoint's tensor.
        source_rows: ``source``'s layout (same ``groups``, ``prefix``, ``per_class``).
        source_index: for each target class, the source class it takes its rows from,
            or None for a class that stays as initialised.

    Raises:
        ValueError: shapes or layouts that don't fit each other.
    """
    if target.shape[0] != target_rows.num_rows or source.shape[0] != source_rows.num_rows:
        raise ValueError(f'class rows: tensor shapes {tuple(target.shape)} / '
                         f'{tuple(source.shape)} do not have the declared rows '
                         f'({target_rows.describe()} / {source_rows.describe()})')
    if target.shape[1:] != source.shape[1:]:
        raise ValueError(f'class rows: trailing shapes differ, {tuple(source.shape)} -> '
                         f'{tuple(target.shape)}')
    if (target_rows.groups, target_rows.prefix, target_rows.per_class) != \
            (source_rows.groups, source_rows.prefix, source_rows.per_class):
        raise ValueError(f'class rows: block layouts differ ({source_rows.describe()} -> '
                         f'{target_rows.describe()})')
    if len(source_index) != target_rows.num_classes:
        raise ValueError(f'class rows: {len(source_index)} matches for '
                         f'{target_rows.num_classes} classes')
    out = target.detach().clone()
    for new, old in enumerate(source_index):
        if old is not None:
            out[target_rows.rows_of(new)] = source[source_rows.rows_of(old)].to(out)
    if target_rows.background is not None and source_rows.background is not None:
        out[target_rows.background_rows()] = source[source_rows.background_rows()].to(out)
    if target_rows.prefix:
        out[target_rows.prefix_rows()] = source[source_rows.prefix_rows()].to(out)
    return out


def gather_class_rows(source: Tensor, source_rows: ClassRows, target_rows: ClassRows,
                      source_index: Sequence[int]) -> Tensor:
    """A tensor of ``target_rows``' layout built wholly from ``source`` (converters).

    Class ``c`` of the target takes source class ``source_index[c]``; the background
    rows and the prefix rows come from the source's. Converting a foreign layout
    (torchvision's background-first, 91 COCO ids) into MMDetection's is one call.

    Raises:
        ValueError: the layouts disagree in blocks or rows per class, or the target
            needs a background or prefix the source lacks.
    """
    if source.shape[0] != source_rows.num_rows:
        raise ValueError(f'class rows: source has {source.shape[0]} rows, '
                         f'{source_rows.describe()} has {source_rows.num_rows}')
    if (target_rows.groups, target_rows.per_class) != (source_rows.groups, source_rows.per_class):
        raise ValueError(f'class rows: cannot gather {target_rows.describe()} from '
                         f'{source_rows.describe()}')
    if len(source_index) != target_rows.num_classes:
        raise ValueError(f'class rows: {len(source_index)} source classes for '
                         f'{target_rows.num_classes} target classes')
    index = torch.empty(target_rows.num_rows, dtype=torch.long)
    for new, old in enumerate(source_index):
        index[target_rows.rows_of(new)] = source_rows.rows_of(old)
    if target_rows.background is not None:
        if source_rows.background is None:
            raise ValueError('class rows: the target has a background row, the source none')
        index[target_rows.background_rows()] = source_rows.background_rows()
    if target_rows.prefix:
        if target_rows.prefix != source_rows.prefix:
            raise ValueError(f'class rows: prefix {source_rows.prefix} -> {target_rows.prefix}')
        index[target_rows.prefix_rows()] = source_rows.prefix_rows()
    return source[index].clone()


def declare(module_name: str, rows: ClassRows, bias: bool = True) -> Dict[str, ClassRows]:
    """``{'<module>.weight': rows, '<module>.bias': rows}``: a layer's declaration."""
    names = ('weight', 'bias') if bias else ('weight',)
    return {f'{module_name}.{n}': rows for n in names}


def iter_class_rows(model: nn.Module) -> Iterator[Tuple[str, nn.Module, ClassRows]]:
    """``(state_dict key, declaring module, ClassRows)`` of every declared tensor."""
    for prefix, module in class_row_heads(model):
        for name, rows in module.class_rows().items():
            yield (f'{prefix}.{name}' if prefix else name), module, rows


def class_row_heads(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """``(module path, module)`` of the modules that declare class rows."""
    return [(prefix, module) for prefix, module in model.named_modules()
            if callable(getattr(module, 'class_rows', None))]


def find_class_rows(model: nn.Module) -> Dict[str, ClassRows]:
    """Every class-dependent tensor of ``model``: state_dict key -> ClassRows.

    Raises:
        ValueError: a declaration names a tensor the model doesn't have, or
            one whose row count is not the declared one (a head bug).
    """
    state = model.state_dict(keep_vars=True)
    found: Dict[str, ClassRows] = {}
    for key, module, rows in iter_class_rows(model):
        if key not in state:
            raise ValueError(f'{type(module).__name__} declares class rows for {key!r}, which '
                             'is not in the model state_dict')
        if state[key].shape[0] != rows.num_rows:
            raise ValueError(f'{type(module).__name__} declares {key!r} as '
                             f'{rows.describe()} but it has {state[key].shape[0]} rows')
        found[key] = rows
    return found


def class_row_modules(class_rows: Mapping[str, ClassRows]) -> List[str]:
    """The module paths that hold declared tensors, in order (for presets and reports)."""
    seen: Dict[str, None] = {}
    for key in class_rows:
        seen.setdefault(key.rsplit('.', 1)[0], None)
    return list(seen)
