"""What plugs mmft into MMEngine's Runner: FinetuneRunner, the hooks and schedulers."""
from . import hooks, schedulers  # noqa: F401
from .runner import FinetuneRunner

__all__ = ['FinetuneRunner']
