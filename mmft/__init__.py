"""mmft: fine-tuning object detectors on MMEngine."""
from .version import __version__

__all__ = ['__version__']
