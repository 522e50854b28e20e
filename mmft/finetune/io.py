"""Reading and writing checkpoints safely.

Reading: every ``.pth`` goes through ``torch.load(weights_only=True)``. The
unpickler then only rebuilds tensors, plain containers and the globals on an
explicit allow-list: exactly the types MMEngine puts into its own checkpoints
(``HistoryBuffer`` in ``message_hub``, numpy arrays and scalars in the logged
statistics). A checkpoint asking for any other global (``os.system``,
``builtins.eval``, ...) is refused with :class:`UnsafeCheckpointError` before
any of its code runs. ``weights_only=False`` is never used.

Writing: :class:`AtomicLocalBackend` replaces MMEngine's local file backend so
that every checkpoint is written to a temporary file in the same folder,
flushed, and renamed over the target: a run killed while saving leaves the
previous file intact, never a truncated one. (MMEngine's CheckpointHook writes
the small ``last_checkpoint`` pointer with a plain ``open``; FinetuneRunner's
resume falls back to the newest checkpoint file when that pointer is broken.)
"""
import io
import os
import os.path as osp
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple, Union

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.fileio import io as mmengine_io
from mmengine.logging.history_buffer import HistoryBuffer


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint's pickle asked for a global that is not on the allow-list."""


# HistoryBuffer pickles its statistics table as ``getattr(HistoryBuffer, 'min')``
# and so on. A general ``getattr`` would hand a pickle any attribute of any
# allowed object (``np.ndarray.tofile`` writes files), so only these lookups pass.
_HISTORY_BUFFER_STATISTICS = frozenset({'min', 'max', 'mean', 'current'})


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """The only ``getattr`` an mmft checkpoint may call while unpickling."""
    if (obj is HistoryBuffer or isinstance(obj, HistoryBuffer)) and \
            name in _HISTORY_BUFFER_STATISTICS:
        return getattr(obj, name)
    raise UnsafeCheckpointError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); only HistoryBuffer '
        f'statistics {sorted(_HISTORY_BUFFER_STATISTICS)} are allowed')


def _numpy_globals() -> List[Tuple[Callable, str]]:
    """numpy's pickle globals under both their numpy 2 and numpy 1 names."""
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    entries: List[Tuple[Callable, str]] = []
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        entries.append((multiarray._reconstruct, f'{module}._reconstruct'))
        entries.append((multiarray.scalar, f'{module}.scalar'))
    entries += [(np.ndarray, 'numpy.ndarray'), (np.dtype, 'numpy.dtype')]
    # numpy >= 1.25 pickles some dtypes by their class, e.g. numpy.dtypes.Float64DType
    for name in dir(getattr(np, 'dtypes', object())):
        cls = getattr(np.dtypes, name)
        if isinstance(cls, type) and issubclass(cls, np.dtype):
            entries.append((cls, f'numpy.dtypes.{name}'))
    return entries


def safe_checkpoint_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The allow-list: exactly what MMEngine's own checkpoints contain."""
    return [
        (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
        (_history_buffer_getattr, 'builtins.getattr'),
        *_numpy_globals(),
    ]


_registered = False


def register_safe_globals() -> None:
    """Put the allow-list into ``torch.serialization`` (idempotent).

    After this, MMEngine's own ``torch.load`` calls (resume, ``load_from``) read
    MMEngine checkpoints under ``weights_only=True``.
    """
    global _registered
    if not _registered:
        torch.serialization.add_safe_globals(safe_checkpoint_globals())
        _registered = True


def torch_load_safely(source: Union[str, Path, io.BytesIO],
                      map_location: Union[str, torch.device, None] = 'cpu') -> Any:
    """``torch.load`` with ``weights_only=True`` and mmft's allow-list.

    Raises:
        UnsafeCheckpointError: the pickle needs a global outside the allow-list.
            Nothing from the file has run at that point.
    """
    register_safe_globals()
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        where = source if isinstance(source, (str, Path)) else 'checkpoint'
        # torch's message wraps the one useful line ("... unsupported GLOBAL
        # posix.system ...") in advice to turn weights_only off, which we never do
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        noise = ('weights_only', 'Check the documentation', 'WeightsUnpickler error')
        culprit = next((ln for ln in lines if not any(n in ln for n in noise)), '')
        raise UnsafeCheckpointError(
            f'refused to load {where}: its pickle asks for code outside the '
            f'allow-list of tensors, containers, numpy arrays and MMEngine '
            f'HistoryBuffer, so it was not unpickled and nothing in it ran '
            f'({culprit}). If the file comes from a source '
            'you trust, re-save just its weights in a trusted Python session '
            '(torch.save({"state_dict": model_state_dict}, path)).') from None


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
    """
    state_dict: Dict[str, torch.Tensor]
    meta: Dict[str, Any] = field(default_factory=dict)
    format: str = 'state_dict'
    raw: Any = None
    unconverted: List[str] = field(default_factory=list)


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
        path: a local ``.pth`` / ``.pt`` / ``.pkl`` / ``.caffemodel`` file.
        map_location: passed to ``torch.load``.
        source_format: ``'auto'``, ``'mmft'`` (never convert), ``'torchvision'``,
            ``'detectron2'`` or ``'caffe'``.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message says how to fix it).
        UnsafeCheckpointError: the file would run code when unpickled.
    """
    path = str(path)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'checkpoint {path!r} does not exist. Check load_from / --load-from '
            '(this machine cannot download model-zoo weights: put the file there '
            'first, or convert one with tools/model_converters/).')
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
    return LoadedCheckpoint(state_dict=state_dict, meta=dict(meta), format=fmt, raw=obj)


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


def write_atomically(data: bytes, path: Union[str, Path]) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    The rename is atomic on POSIX file systems, so readers see either the old
    file or the complete new one.
    """
    path = str(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


class AtomicLocalBackend(LocalBackend):
    """MMEngine's local backend whose writes are atomic (temporary file + rename)."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        write_atomically(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        write_atomically(obj.encode(encoding), filepath)


def install_atomic_local_backend() -> None:
    """Make MMEngine write local files (checkpoints included) atomically.

    MMEngine's ``save_checkpoint`` serialises to memory and hands the bytes to
    the file backend's ``put``; swapping the local backend makes that write
    atomic without touching the Runner.
    """
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    # backends built before the swap are cached by get_file_backend
    for key, backend in list(mmengine_io.backend_instances.items()):
        if type(backend) is LocalBackend:
            mmengine_io.backend_instances[key] = AtomicLocalBackend()


def setup_checkpoint_io() -> None:
    """Safe reading (allow-list) and atomic writing for every checkpoint mmft touches."""
    register_safe_globals()
    install_atomic_local_backend()
