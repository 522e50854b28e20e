"""High-level entry points for scripts and notebooks."""
from .inference import inference_detector, init_detector

__all__ = ['init_detector', 'inference_detector']
