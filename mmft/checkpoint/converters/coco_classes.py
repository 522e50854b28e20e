"""COCO's 80 class names and its 91-id category layout.

Conventions:
    * ``COCO_CLASSES[i]`` is the name of mmft class index ``i`` (0..79), in
      MMDetection's order, which is the order of increasing COCO category id
      (the same order Detectron2 uses for its contiguous ids).
    * ``COCO_CATEGORY_IDS[i]`` is the COCO category id (1..90, with 10 unused
      ids) of class ``i``. torchvision's COCO detectors have 91 outputs indexed
      by category id, index 0 being background, so ``COCO_CATEGORY_IDS[i]`` is
      also the torchvision output row of mmft class ``i``.
"""
from typing import Dict, List, Tuple

from mmft.datasets.coco import COCO_CLASSES  # the one list, in MMDetection's order

COCO_CATEGORY_IDS: Tuple[int, ...] = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77,
    78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90)

#: Number of outputs of torchvision's COCO classifiers (background + ids 1..90).
TORCHVISION_COCO_NUM_OUTPUTS = 91

assert len(COCO_CLASSES) == len(COCO_CATEGORY_IDS) == 80


def coco_id_to_index() -> Dict[int, int]:
    """COCO category id -> mmft class index (0..79)."""
    return {cat_id: i for i, cat_id in enumerate(COCO_CATEGORY_IDS)}


def unused_coco_ids() -> List[int]:
    """The ids in 1..90 that COCO never uses (torchvision keeps rows for them)."""
    used = set(COCO_CATEGORY_IDS)
    return [i for i in range(1, TORCHVISION_COCO_NUM_OUTPUTS) if i not in used]
