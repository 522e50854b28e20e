"""Checkpoints: safe reading, the formats mmft reads, conversion, atomic writing.

Below ``models/`` and ``finetune/`` (imports neither): a file goes in, an
mmft-layout state_dict with its meta and format comes out.
"""
from .reader import LoadedCheckpoint, read_checkpoint
from .exact import checkpoint_classes, load_exact
from .remote import RemoteCheckpointError
from .safe_load import (CorruptCheckpointError, UnsafeCheckpointError, register_safe_globals,
                        torch_load_safely)
from .writer import AtomicLocalBackend, setup_checkpoint_io, write_atomically

__all__ = [
    'LoadedCheckpoint', 'read_checkpoint', 'UnsafeCheckpointError', 'register_safe_globals',
    'torch_load_safely', 'setup_checkpoint_io', 'write_atomically', 'AtomicLocalBackend',
    'CorruptCheckpointError', 'RemoteCheckpointError', 'checkpoint_classes', 'load_exact'
]
