"""Moving knowledge from a pretrained checkpoint into a new model: plain functions."""
from .io import (LoadedCheckpoint, UnsafeCheckpointError, read_checkpoint,
                 setup_checkpoint_io, torch_load_safely)

__all__ = [
    'LoadedCheckpoint', 'UnsafeCheckpointError', 'read_checkpoint',
    'setup_checkpoint_io', 'torch_load_safely'
]
