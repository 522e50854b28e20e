"""``read_checkpoint``: any supported file -> an mmft-layout state_dict, meta and format."""
import os.path as osp
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Union

import torch

from .remote import fetch, is_remote
from .safe_load import CorruptCheckpointError, UnsafeCheckpointError, torch_load_safely


@dataclass
class LoadedCheckpoint:
    """What :func:`read_checkpoint` found in a file.

    Attributes:
        state_dict: parameter / buffer name -> tensor, prefixes as in the file
            (``module.`` from DDP is stripped).
        meta: the checkpoint's meta dict (``dataset_meta.classes`` lives here), or {}.
        format: where it came from: ``'mmengine'`` (an mmft / MMEngine /
            MMDetection checkpoint), ``'state_dict'`` (a bare ``{name: tensor}``
            in mmft's layout), ``'model'`` (``{'model': ...}`` in mmft's layout),
            or a converted foreign format: ``'torchvision'``, ``'detectron2'``,
            ``'caffe'`` (state_dict then in mmft's layout, ``meta`` holding
            ``source_format``, ``classes`` and ``dataset_meta.classes`` where known).
        raw: the whole loaded object (optimizer, message_hub, ... for resume).
        unconverted: source keys of a foreign checkpoint that have no place in
            mmft's layout (also in ``meta['unconverted_keys']``), so a load
            report can account for every key of the file.
        ema: the file was saved with MMEngine's ``EMAHook``: its ``state_dict`` holds the
            averaged (EMA) weights, the ones read here, and ``ema_state_dict`` the raw
            training weights, which are not used.
    """
    state_dict: Dict[str, torch.Tensor]
    meta: Dict[str, Any] = field(default_factory=dict)
    format: str = 'state_dict'
    raw: Any = None
    unconverted: List[str] = field(default_factory=list)
    ema: bool = False


def _strip_prefix(state_dict: Dict[str, Any], prefix: str) -> Dict[str, Any]:
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


def read_checkpoint(path: Union[str, Path],
                    map_location: Union[str, torch.device, None] = 'cpu',
                    source_format: str = 'auto') -> LoadedCheckpoint:
    """Read a checkpoint file safely, say what kind it is, convert foreign ones.

    Format detection (``source_format='auto'``): ``.pkl`` -> Detectron2
    (unpickled with an allow-list of numpy arrays and plain containers);
    ``.caffemodel`` -> Caffe (protobuf); any other file goes through
    ``torch.load(weights_only=True)`` and, if its keys look like a torchvision
    detection / classification model or Detectron2, is converted too.
    mmft / MMEngine / MMDetection checkpoints are returned as they are.

    Args:
        path: a local ``.pth`` / ``.pt`` / ``.pkl`` / ``.caffemodel`` file, or a URL /
            model-zoo name (``torchvision://resnet50``), fetched into the torch hub
            cache first (:mod:`mmft.checkpoint.remote`).
        map_location: passed to ``torch.load``.
        source_format: ``'auto'``, ``'mmft'`` (never convert), ``'torchvision'``,
            ``'detectron2'`` or ``'caffe'``.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message says how to fix it).
        IsADirectoryError: ``path`` is a folder.
        CorruptCheckpointError: the file is empty, truncated or not a checkpoint.
        UnsafeCheckpointError: the file would run code when unpickled.
        RemoteCheckpointError: a URL that cannot be fetched or verified.
    """
    path = str(path)
    if is_remote(path):
        path = fetch(path)
    check_readable(path)
    known = ('auto', 'mmft', 'torchvision', 'detectron2', 'caffe')
    if source_format not in known:
        raise ValueError(f'source_format must be one of {known}, got {source_format!r}')
    from .converters import detect_file_format
    file_format = detect_file_format(path)
    # .pkl / .caffemodel have their own readers; a Detectron2 .pth goes through torch.load
    if source_format == 'caffe':
        return _read_foreign_file(path, 'caffe')
    if file_format in ('detectron2', 'caffe') and source_format in ('auto', file_format):
        return _read_foreign_file(path, file_format)
    obj = torch_load_safely(path, map_location=map_location)
    if not isinstance(obj, dict):
        raise TypeError(f'checkpoint {path!r} holds a {type(obj).__name__}, not a '
                        'dict of tensors; save model.state_dict() instead of the model')
    if 'state_dict' in obj and isinstance(obj['state_dict'], dict):
        state_dict, meta, fmt = obj['state_dict'], obj.get('meta') or {}, 'mmengine'
        if not isinstance(meta, dict):
            raise CorruptCheckpointError(
                f'checkpoint {path!r} has a meta of type {type(meta).__name__}, not a dict; '
                'it was not written by MMEngine. Re-save it as {"state_dict": ..., "meta": '
                '{"dataset_meta": {"classes": (...)}}}.')
    elif 'model' in obj and isinstance(obj['model'], dict):
        state_dict, meta, fmt = obj['model'], {}, 'model'
    else:
        state_dict, meta, fmt = obj, {}, 'state_dict'
    state_dict = _strip_prefix(dict(state_dict), 'module.')
    if fmt != 'mmengine' and source_format != 'mmft':
        from .converters import convert_state_dict, detect_state_dict_format
        foreign = source_format if source_format != 'auto' else detect_state_dict_format(state_dict)
        if foreign is not None:
            return _from_conversion(convert_state_dict(state_dict, foreign), raw=obj)
    not_tensors = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CorruptCheckpointError(
            f'checkpoint {path!r}: {len(not_tensors)} state_dict entries are not tensors, e.g. '
            f'{not_tensors[:3]} ({type(state_dict[not_tensors[0]]).__name__}); save '
            'model.state_dict() (tensors only).')
    # EMAHook swaps the two before saving: state_dict is the average, ema_state_dict the raw
    ema = fmt == 'mmengine' and isinstance(obj.get('ema_state_dict'), dict)
    return LoadedCheckpoint(state_dict=state_dict, meta=dict(meta), format=fmt, raw=obj,
                            ema=ema)


def check_readable(path: str) -> None:
    """Raise a clear error for a path that is not a readable checkpoint file."""
    if osp.isdir(path):
        raise IsADirectoryError(f'checkpoint {path!r} is a folder, not a file; give the '
                                '.pth inside it (e.g. the one its last_checkpoint names)')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'checkpoint {path!r} does not exist. Check load_from / --load-from (a URL or '
            'torchvision:// / open-mmlab:// name is downloaded into the torch hub cache; a '
            'local file must be there first).')
    if osp.getsize(path) == 0:
        raise CorruptCheckpointError(f'checkpoint {path!r} is empty (0 bytes): an '
                                     'interrupted download or copy. Fetch it again.')


def _from_conversion(result: Any, raw: Any) -> LoadedCheckpoint:
    """A converters.ConversionResult as a LoadedCheckpoint."""
    meta = dict(result.meta)
    meta['unconverted_keys'] = list(result.unconverted)
    return LoadedCheckpoint(state_dict=result.state_dict, meta=meta,
                            format=meta['source_format'], raw=raw,
                            unconverted=list(result.unconverted))


def _read_foreign_file(path: str, source_format: str) -> LoadedCheckpoint:
    """Read and convert a Detectron2 ``.pkl`` or a Caffe ``.caffemodel``."""
    from .converters import (convert_caffe, convert_detectron2, load_detectron2_pkl,
                             read_caffemodel)
    if source_format == 'detectron2':
        try:
            obj = load_detectron2_pkl(path)
        except pickle.UnpicklingError as exc:
            raise UnsafeCheckpointError(f'{path}: {exc}') from None
        return _from_conversion(convert_detectron2(obj), raw=obj)
    layers = read_caffemodel(path)
    return _from_conversion(convert_caffe(layers), raw=layers)


