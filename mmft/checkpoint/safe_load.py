"""Reading checkpoint pickles safely: ``torch.load(weights_only=True)`` plus an allow-list.

Every ``.pth`` mmft reads (``load_from``, resume, ``init_cfg``, tools) goes through
:func:`torch_load_safely`, whatever torch's default or the environment says
(``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``): the unpickler rebuilds tensors, plain
containers and the globals on an explicit allow-list, exactly the types MMEngine
puts into its own checkpoints (``HistoryBuffer`` in ``message_hub``, numpy arrays
and scalars in the logged statistics). A checkpoint asking for any other global
(``os.system``, ``builtins.eval``, ...) is refused with
:class:`UnsafeCheckpointError` before any of its code runs. ``weights_only=False``
is never used.
"""
import io
import pickle
from pathlib import Path
from typing import Any, Callable, List, Tuple, Union

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint's pickle asked for a global that is not on the allow-list."""


class CorruptCheckpointError(ValueError):
    """A file that is empty, truncated, or no checkpoint at all."""


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
    where = source if isinstance(source, (str, Path)) else 'checkpoint'
    try:
        # weights_only explicitly: then neither torch's default (False before 2.6) nor
        # TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD decides whether a downloaded file may run code
        return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if 'weights_only' not in str(exc) and 'Weights only' not in str(exc):
            raise CorruptCheckpointError(f'{where} is not a readable checkpoint (a truncated '
                                         f'or foreign file?): {exc}') from None
        # torch's message wraps the one useful line ("... unsupported GLOBAL
        # posix.system ...") in advice to turn weights_only off, which we never do
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        noise = ('weights_only', 'Check the documentation', 'WeightsUnpickler error',
                 'Weights only load failed', 'trust', 'safe_globals', 'allowlist')
        culprit = next((ln for ln in lines if not any(n in ln for n in noise)), '')
        raise UnsafeCheckpointError(
            f'refused to load {where}: its pickle asks for code outside the '
            f'allow-list of tensors, containers, numpy arrays and MMEngine '
            f'HistoryBuffer, so it was not unpickled and nothing in it ran '
            f'({culprit}). If the file comes from a source '
            'you trust, re-save just its weights in a trusted Python session '
            '(torch.save({"state_dict": model_state_dict}, path)).') from None
    except (EOFError, RuntimeError) as exc:
        # torch's zip reader: "PytorchStreamReader failed reading zip archive" and kin
        raise CorruptCheckpointError(
            f'{where} is truncated or not a torch checkpoint ({type(exc).__name__}: '
            f'{(str(exc).splitlines() or [""])[0]}). Fetch or save it again.') from None

