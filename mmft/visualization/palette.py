"""Per-class colours for drawing detections.

Conventions: a colour is an RGB tuple of three ints in [0, 255] (the order
MMEngine's Visualizer draws in); a palette is a list of colours indexed by
class label. ``dataset_meta['palette']`` uses the same format.
"""
from typing import List, Sequence, Tuple, Union

import numpy as np
from mmengine.visualization.utils import color_str2rgb

Color = Tuple[int, int, int]
PaletteLike = Union[None, str, Color, Sequence[Color]]

# names MMDetection accepts for the palettes of its datasets
_DATASET_PALETTES = {'coco': 'CocoDataset', 'voc': 'VOCDataset', 'citys': 'CityscapesDataset'}


def get_palette(palette: PaletteLike, num_classes: int) -> List[Color]:
    """At least ``num_classes`` colours from any palette description.

    Args:
        palette: a list of colours (e.g. ``dataset_meta['palette']``); one
            colour for every class; ``'coco'`` / ``'voc'`` / ``'citys'`` for
            that dataset's palette; a matplotlib colour name (``'red'``);
            ``None`` or ``'random'`` for random but fixed colours (the colour
            of a class does not depend on ``num_classes``).
        num_classes: how many classes need a colour.
    """
    if palette is None or palette == 'random':
        # a private generator: drawing must not move the global numpy seed
        rng = np.random.default_rng(42)
        return [_rgb(c) for c in rng.integers(0, 256, size=(num_classes, 3))]
    if isinstance(palette, str):
        if palette in _DATASET_PALETTES:
            return get_palette(_dataset_palette(_DATASET_PALETTES[palette]), num_classes)
        return [color_str2rgb(palette)] * num_classes
    if len(palette) == 3 and all(np.isscalar(c) for c in palette):
        return [_rgb(palette)] * num_classes
    colors = [_rgb(c) for c in palette]
    if len(colors) < num_classes:
        raise ValueError(f'palette has {len(colors)} colours but labels go up to '
                         f'{num_classes - 1}; give one colour per class in '
                         "dataset_meta['palette'], or use palette='random'")
    return colors


def _rgb(color: Sequence) -> Color:
    if len(color) != 3 or not all(0 <= c <= 255 for c in color):
        raise ValueError(f'a colour is 3 ints in [0, 255] (RGB), got {tuple(color)}')
    return tuple(int(c) for c in color)


def _dataset_palette(dataset_type: str) -> List[Color]:
    from mmft.registry import DATASETS
    dataset_cls = DATASETS.get(dataset_type)
    if dataset_cls is None or 'palette' not in getattr(dataset_cls, 'METAINFO', {}):
        raise ValueError(f'no palette for {dataset_type}: it is not registered or its '
                         "METAINFO has no 'palette'; pass a list of RGB tuples instead")
    return list(dataset_cls.METAINFO['palette'])


def jitter_color(color: Color, seed: int) -> Color:
    """``color`` shifted a little, the same way for the same ``seed``.

    Tells apart the masks of neighbouring instances of one class.
    """
    shift = np.random.default_rng(seed).uniform(-48, 48, size=3)
    return _rgb(np.clip(np.asarray(color) + shift, 0, 255).astype(int))


def adaptive_scales(areas: np.ndarray, min_area: float = 800,
                    max_area: float = 30000) -> np.ndarray:
    """Font scale per box in [0.5, 1], growing linearly with the box area."""
    return np.clip(0.5 + (areas - min_area) / (max_area - min_area), 0.5, 1.0)


def label_colors(palette: PaletteLike, labels: np.ndarray) -> List[Color]:
    """The colour of each label, from ``palette`` (see :func:`get_palette`)."""
    colors = get_palette(palette, int(labels.max()) + 1 if len(labels) else 1)
    return [colors[int(label)] for label in labels]
