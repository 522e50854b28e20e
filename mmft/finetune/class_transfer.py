"""Copy the head rows of classes that the old and new class lists share by name.

A detector's class-dependent layers hold one block of output rows per class.
When a COCO checkpoint is fine-tuned on Cityscapes, 7 of the 8 new classes
exist in COCO (``rider`` through its synonym ``person``): their rows are copied
from the checkpoint instead of starting from random initialisation; only truly
new classes start fresh. Keeping every old class and appending new ones
(incremental fine-tuning) is the same operation with the union of both lists.

Row layouts (MMDetection 3.x), for a head with ``n`` classes:

=================  ===========================  ==============================
layer              rows                         class ``c``
=================  ===========================  ==============================
``fc_cls``         ``n + 1`` (softmax)          row ``c``; background row ``n``
``fc_cls``         ``n`` (sigmoid)              row ``c``
``fc_reg``         ``4 * n`` (4 if agnostic)    rows ``4c .. 4c + 3``
``conv_logits``    ``n`` (1 if agnostic)        channel ``c``
=================  ===========================  ==============================

A layer is class-dependent when its parent module has a ``num_classes``
attribute, is not class-agnostic (``reg_class_agnostic`` / ``class_agnostic``)
and its row count fits one of these layouts. The checkpoint's layout is read
from its own row count, so a softmax classifier can feed a sigmoid one.
"""
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from torch import Tensor, nn

#: New-dataset name -> the name the same thing has in the source dataset (COCO's names).
BUILTIN_SYNONYMS: Dict[str, str] = {
    'rider': 'person',
    'motorbike': 'motorcycle',
    'aeroplane': 'airplane',
    'tvmonitor': 'tv',
    'sofa': 'couch',
    'diningtable': 'dining table',
    'pottedplant': 'potted plant',
}

#: layer name -> rows per class (background handled separately for 'fc_cls')
_ROWS_PER_CLASS = {'fc_cls': 1, 'fc_reg': 4, 'conv_logits': 1}


@dataclass(frozen=True)
class RowLayout:
    """How one class-dependent tensor's first dimension is laid out."""
    num_classes: int
    rows_per_class: int
    background_last: bool

    @property
    def num_rows(self) -> int:
        return self.num_classes * self.rows_per_class + int(self.background_last)

    def rows(self, index: int) -> slice:
        k = self.rows_per_class
        return slice(index * k, (index + 1) * k)


@dataclass(frozen=True)
class ClassMatch:
    """Where a new class's rows come from: ``old_index`` is None for a new class."""
    new_index: int
    new_name: str
    old_index: Optional[int]
    old_name: Optional[str]
    how: str  # 'name', 'synonym', 'mapping' or 'new'


def _normalise(name: str) -> str:
    """'Dining_Table', 'dining table' and 'diningtable' are the same class."""
    return re.sub(r'[\s_\-]+', '', str(name).lower())


def match_classes(new_classes: Sequence[str], old_classes: Sequence[str],
                  mapping: Optional[Mapping[str, str]] = None,
                  use_synonyms: bool = True) -> List[ClassMatch]:
    """For each new class, the old class it takes its rows from.

    Precedence: the user's ``mapping`` (new name -> old name), then the same
    name (case, spaces and underscores ignored), then :data:`BUILTIN_SYNONYMS`
    in either direction (VOC -> COCO and COCO -> VOC).

    Raises:
        ValueError: ``mapping`` names a class that is in neither list.
    """
    old_index = {_normalise(n): i for i, n in enumerate(old_classes)}
    new_names = {_normalise(n) for n in new_classes}
    mapping = dict(mapping or {})
    for new, old in mapping.items():
        if _normalise(new) not in new_names:
            raise ValueError(f'finetune.class_mapping key {new!r} is not a new class; new '
                             f'classes: {list(new_classes)}')
        if _normalise(old) not in old_index:
            raise ValueError(f'finetune.class_mapping maps {new!r} to {old!r}, which is not a '
                             f"checkpoint class; checkpoint classes: {list(old_classes)}")
    user = {_normalise(k): _normalise(v) for k, v in mapping.items()}
    synonyms: Dict[str, str] = {}
    if use_synonyms:
        for new, old in BUILTIN_SYNONYMS.items():
            synonyms.setdefault(_normalise(new), _normalise(old))
            synonyms.setdefault(_normalise(old), _normalise(new))

    matches = []
    for i, name in enumerate(new_classes):
        key = _normalise(name)
        for how, source in (('mapping', user.get(key)), ('name', key),
                            ('synonym', synonyms.get(key))):
            if source is not None and source in old_index:
                j = old_index[source]
                matches.append(ClassMatch(i, name, j, old_classes[j], how))
                break
        else:
            matches.append(ClassMatch(i, name, None, None, 'new'))
    return matches


def row_layout(model: nn.Module, key: str) -> Optional[RowLayout]:
    """The row layout of state_dict ``key`` of ``model``, or None if not class-dependent."""
    parts = key.split('.')
    if len(parts) < 3 or parts[-2] not in _ROWS_PER_CLASS:
        return None
    try:
        head = model.get_submodule('.'.join(parts[:-2]))
        tensor = model.get_parameter(key) if key.endswith(('weight', 'bias')) else None
    except AttributeError:
        return None
    num_classes = getattr(head, 'num_classes', None)
    if tensor is None or not isinstance(num_classes, int):
        return None
    agnostic = {'fc_reg': 'reg_class_agnostic', 'conv_logits': 'class_agnostic'}.get(parts[-2])
    if agnostic is not None and getattr(head, agnostic, False):
        return None
    return layout_for_rows(parts[-2], tensor.shape[0], num_classes)


def layout_for_rows(layer: str, num_rows: int, num_classes: int) -> Optional[RowLayout]:
    """Which layout ``num_rows`` rows of ``layer`` have for ``num_classes`` classes."""
    k = _ROWS_PER_CLASS.get(layer)
    if k is None:
        return None
    if layer == 'fc_cls' and num_rows == num_classes + 1:
        return RowLayout(num_classes, 1, True)
    if num_rows == k * num_classes:
        return RowLayout(num_classes, k, False)
    return None


def transfer_rows(target: Tensor, source: Tensor, new_layout: RowLayout,
                  old_layout: RowLayout, matches: Sequence[ClassMatch]) -> Tensor:
    """``target`` (the new model's initialised tensor) with matched rows from ``source``.

    Rows of shared classes and the background row come from ``source``; rows of
    new classes keep ``target``'s values.

    Raises:
        ValueError: the tensors don't have the layouts' row counts or differ
            beyond the first dimension.
    """
    if target.shape[0] != new_layout.num_rows or source.shape[0] != old_layout.num_rows or \
            target.shape[1:] != source.shape[1:]:
        raise ValueError(f'cannot transfer class rows from shape {tuple(source.shape)} '
                         f'({old_layout}) to {tuple(target.shape)} ({new_layout})')
    out = target.detach().clone()
    for m in matches:
        if m.old_index is not None:
            out[new_layout.rows(m.new_index)] = source[old_layout.rows(m.old_index)].to(out)
    if new_layout.background_last and old_layout.background_last:
        out[-1] = source[-1].to(out)
    return out


def is_identity(matches: Sequence[ClassMatch], num_old: int) -> bool:
    """The new classes are the old ones in the same order: a plain load."""
    return len(matches) == num_old and all(m.old_index == m.new_index for m in matches)


def plan_class_transfer(model: nn.Module, model_state: Mapping[str, Tensor],
                        checkpoint: Mapping[str, Tensor], keys: Sequence[str],
                        new_classes: Sequence[str], old_classes: Sequence[str],
                        matches: Sequence[ClassMatch]
                        ) -> Tuple[Dict[str, Tensor], Dict[str, str]]:
    """Transferred tensors for the class-dependent ``keys``.

    Returns:
        ``(key -> new tensor, key -> reason it could not be transferred)``.
    """
    transferred: Dict[str, Tensor] = {}
    failed: Dict[str, str] = {}
    for key in keys:
        new_layout = row_layout(model, key)
        if new_layout is None:
            continue
        if new_layout.num_classes != len(new_classes):
            failed[key] = (f'head has num_classes={new_layout.num_classes} but the dataset has '
                           f'{len(new_classes)} classes')
            continue
        source = checkpoint[key]
        # the checkpoint's own layout: a softmax checkpoint may meet a sigmoid head
        old_layout = layout_for_rows(key.split('.')[-2], source.shape[0], len(old_classes))
        if old_layout is None or old_layout.rows_per_class != new_layout.rows_per_class or \
                source.shape[1:] != model_state[key].shape[1:]:
            failed[key] = (f'checkpoint shape {tuple(source.shape)} does not fit '
                           f'{len(old_classes)} checkpoint classes')
            continue
        transferred[key] = transfer_rows(model_state[key], source, new_layout, old_layout,
                                         matches)
    return transferred, failed


def class_transfer_table(matches: Sequence[ClassMatch]) -> List[List[str]]:
    """Rows ``[new class, source class, how]`` for the report."""
    rows = [['new class', 'from checkpoint class', 'how']]
    for m in matches:
        rows.append([m.new_name, m.old_name if m.old_name is not None else '-',
                     m.how if m.how != 'new' else 'new (initialised)'])
    return rows
