"""Copy the head rows of classes that the old and new class lists share by name.

A detector's class-dependent layers hold one block of output rows per class.
When a COCO checkpoint is fine-tuned on Cityscapes, 7 of the 8 new classes
exist in COCO (``rider`` through its synonym ``person``): their rows are copied
from the checkpoint instead of starting from random initialisation; only truly
new classes start fresh (from the head's own initialisation, e.g. the focal-loss
prior). Keeping every old class and appending new ones (incremental
fine-tuning) is the same operation with the union of both lists.

Which rows belong to which class is what each head declares
(:class:`mmft.structures.class_rows.ClassRows`, via its ``class_rows()``);
nothing here knows a layer name. The checkpoint's layout is the declared one
refitted to its own row count, so a softmax classifier (background row) can
feed a sigmoid one and back.
"""
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from torch import Tensor

from mmft.structures.class_rows import ClassRows, copy_class_rows

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


def is_identity(matches: Sequence[ClassMatch], num_old: int) -> bool:
    """The new classes are the old ones in the same order: a plain load."""
    return len(matches) == num_old and all(m.old_index == m.new_index for m in matches)


def plan_class_transfer(model_state: Mapping[str, Tensor], checkpoint: Mapping[str, Tensor],
                        class_rows: Mapping[str, ClassRows], new_classes: Sequence[str],
                        old_classes: Sequence[str], matches: Sequence[ClassMatch]
                        ) -> Tuple[Dict[str, Tensor], Dict[str, str]]:
    """Transferred tensors for the declared class-dependent keys.

    Args:
        model_state: the model's (initialised) state_dict.
        checkpoint: the checkpoint's tensors, in the model's names.
        class_rows: declared layouts of the keys to transfer (model side).
        new_classes, old_classes: the dataset's and the checkpoint's class names.
        matches: :func:`match_classes` of the two.

    Returns:
        ``(key -> new tensor, key -> reason it could not be transferred)``.
    """
    transferred: Dict[str, Tensor] = {}
    failed: Dict[str, str] = {}
    source_index = [m.old_index for m in matches]
    for key, rows in class_rows.items():
        if rows.num_classes != len(new_classes):
            failed[key] = (f'head has num_classes={rows.num_classes} but the dataset has '
                           f'{len(new_classes)} classes')
            continue
        source = checkpoint[key]
        old_rows = rows.fit(source.shape[0], len(old_classes))
        if old_rows is None or source.shape[1:] != model_state[key].shape[1:]:
            failed[key] = (f'checkpoint shape {tuple(source.shape)} does not fit '
                           f'{len(old_classes)} checkpoint classes as {rows.describe()} does')
            continue
        transferred[key] = copy_class_rows(model_state[key], rows, source, old_rows,
                                           source_index)
    return transferred, failed


def class_transfer_table(matches: Sequence[ClassMatch]) -> List[List[str]]:
    """Rows ``[new class, source class, how]`` for the report."""
    rows = [['new class', 'from checkpoint class', 'how']]
    for m in matches:
        rows.append([m.new_name, m.old_name if m.old_name is not None else '-',
                     m.how if m.how != 'new' else 'new (initialised)'])
    return rows
