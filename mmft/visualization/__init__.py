"""Drawing detections: importing this package registers DetLocalVisualizer."""
from .local_visualizer import DetLocalVisualizer
from .palette import get_palette

__all__ = ['DetLocalVisualizer', 'get_palette']
