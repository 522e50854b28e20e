"""What every converter returns, and the key-rule machinery they share.

A converter takes a foreign ``{name: array}`` dict and returns a
:class:`ConversionResult`: a state_dict in mmft's (MMDetection 3.x) layout
(``backbone.*``, ``neck.*``, ``rpn_head.*``, ``roi_head.*``), meta with
``source_format`` and ``classes`` (``None`` where the file does not say), and
the source keys that did not convert, so every key is accounted for.

Key rules are ``(regex, template)`` pairs matched against the whole source key;
the first rule that matches wins and its template (``re`` group syntax, e.g.
``r'backbone.layer\\1'``) gives the mmft key.
"""
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

KeyRules = Sequence[Tuple[str, str]]


@dataclass
class ConversionResult:
    """A converted checkpoint.

    Attributes:
        state_dict: mmft-layout name -> tensor.
        meta: ``source_format`` (``'torchvision'``, ``'detectron2'``, ``'caffe'``),
            ``source_model`` (``'detection'``, or ``'classification'`` for an
            ImageNet backbone), ``style`` (the ResNet style the weights were
            trained with, as far as the file tells), ``classes`` (tuple of names or ``None``)
            and notes (e.g. ``dropped_rows``).
        unconverted: source keys with no place in mmft's layout.
    """
    state_dict: Dict[str, Tensor]
    meta: Dict[str, Any] = field(default_factory=dict)
    unconverted: List[str] = field(default_factory=list)


def to_tensor(value: Any, name: str) -> Tensor:
    """numpy array / tensor / number -> a float or integer CPU tensor."""
    if isinstance(value, Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        # not np.ascontiguousarray: it turns 0-d arrays (num_batches_tracked) into shape (1,)
        if not (value.flags.c_contiguous and value.flags.writeable):
            value = value.copy(order='C')
        return torch.from_numpy(value)
    if isinstance(value, (int, float, np.number)):
        return torch.as_tensor(value)
    raise TypeError(f'checkpoint entry {name!r} is a {type(value).__name__}, not an array; '
                    'only numeric arrays can be converted')


def rename(keys: Sequence[str], rules: KeyRules) -> Tuple[Dict[str, str], List[str]]:
    """Apply ``rules`` to ``keys``.

    Returns:
        ``({source_key: mmft_key}, [source keys no rule matched])``.
    """
    compiled = [(re.compile(pattern), template) for pattern, template in rules]
    mapping: Dict[str, str] = {}
    unmatched: List[str] = []
    for key in keys:
        for pattern, template in compiled:
            match = pattern.fullmatch(key)
            if match:
                mapping[key] = match.expand(template)
                break
        else:
            unmatched.append(key)
    return mapping, unmatched


def convert_by_rules(source: Mapping[str, Any], rules: KeyRules
                     ) -> Tuple[Dict[str, Tensor], Dict[str, str], List[str]]:
    """Rename every key of ``source`` that a rule matches.

    Returns:
        ``(state_dict, {source_key: mmft_key}, unmatched source keys)``.
    """
    mapping, unmatched = rename(list(source), rules)
    state_dict = {new: to_tensor(source[old], old) for old, new in mapping.items()}
    return state_dict, mapping, unmatched


def dataset_meta(classes: Optional[Sequence[str]]) -> Dict[str, Any]:
    """The ``dataset_meta`` block MMEngine stores in a checkpoint's meta."""
    return {'classes': tuple(classes)} if classes is not None else {}


def add_num_batches_tracked(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Give every BatchNorm (a ``running_mean`` key) a ``num_batches_tracked`` buffer.

    Frozen-BN sources (torchvision detectors, Detectron2, Caffe) have none; torch's
    BatchNorm has one, so without it a strict load reports missing keys. The counter is
    only used when ``momentum=None``, and 0 is what a freshly built BatchNorm holds.
    """
    for key in [k for k in state_dict if k.endswith('.running_mean')]:
        counter = key[:-len('running_mean')] + 'num_batches_tracked'
        state_dict.setdefault(counter, torch.tensor(0, dtype=torch.long))
    return state_dict
