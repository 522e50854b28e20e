"""What plugs mmft into MMEngine's Runner: FinetuneRunner and the hooks."""
from . import hooks  # noqa: F401
from .runner import FinetuneRunner

__all__ = ['FinetuneRunner']
