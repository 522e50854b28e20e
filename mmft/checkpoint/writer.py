"""Writing checkpoints atomically.

:class:`AtomicLocalBackend` replaces MMEngine's local file backend so that every
checkpoint is written to a temporary file in the same folder, flushed, and renamed
over the target: a run killed while saving leaves the previous file intact, never a
truncated one.
"""
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend
from mmengine.fileio import io as mmengine_io

from .safe_load import register_safe_globals


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
