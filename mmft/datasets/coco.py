"""CocoDataset: COCO-format instance json (boxes, polygon / RLE masks, crowd regions).

Conventions: COCO ``bbox`` ``[x, y, w, h]`` becomes ``[x, y, x + w, y + h]``; ``iscrowd``
annotations are kept with ``ignore_flag=1``; annotations with ``ignore: true`` are left
out (MMDetection's rule). Category ids are mapped to labels by *name*: label ``i`` is
``metainfo['classes'][i]``, whatever ids and order the json uses, and every configured
class must be a category of the json. Categories not configured are left out (counted).

Refused with the file named: invalid or truncated JSON, entries of ``images`` /
``categories`` without ``id`` / ``file_name`` / ``name``, repeated image or annotation ids
(annotations would land on the wrong image). Dropped and counted with their annotation ids:
annotations whose ``image_id`` is not in ``images``, and everything
:class:`BaseDetDataset` drops (bad boxes, polygons, RLE masks).
"""
import logging
import os.path as osp
from collections import Counter, defaultdict
from typing import List

from mmengine.fileio import load
from mmengine.logging import print_log

from mmft.registry import DATASETS
from .base_det_dataset import (BOX_EMPTY, IMAGE_NO_SIZE, ORPHAN_ANNOTATION, OTHER_CLASS,
                               UNKNOWN_CATEGORY, BaseDetDataset, class_mismatch_error)

COCO_CLASSES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
    'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich',
    'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch',
    'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book',
    'clock', 'vase', 'scissors', 'teddy bear', 'hair drier', 'toothbrush')

COCO_PALETTE = [
    (220, 20, 60), (119, 11, 32), (0, 0, 142), (0, 0, 230), (106, 0, 228), (0, 60, 100),
    (0, 80, 100), (0, 0, 70), (0, 0, 192), (250, 170, 30), (100, 170, 30), (220, 220, 0),
    (175, 116, 175), (250, 0, 30), (165, 42, 42), (255, 77, 255), (0, 226, 252),
    (182, 182, 255), (0, 82, 0), (120, 166, 157), (110, 76, 0), (174, 57, 255), (199, 100, 0),
    (72, 0, 118), (255, 179, 240), (0, 125, 92), (209, 0, 151), (188, 208, 182), (0, 220, 176),
    (255, 99, 164), (92, 0, 73), (133, 129, 255), (78, 180, 255), (0, 228, 0), (174, 255, 243),
    (45, 89, 255), (134, 134, 103), (145, 148, 174), (255, 208, 186), (197, 226, 255),
    (171, 134, 1), (109, 63, 54), (207, 138, 255), (151, 0, 95), (9, 80, 61), (84, 105, 51),
    (74, 65, 105), (166, 196, 102), (208, 195, 210), (255, 109, 65), (0, 143, 149),
    (179, 0, 194), (209, 99, 106), (5, 121, 0), (227, 255, 205), (147, 186, 208), (153, 69, 1),
    (3, 95, 161), (163, 255, 0), (119, 0, 170), (0, 182, 199), (0, 165, 120), (183, 130, 88),
    (95, 32, 0), (130, 114, 135), (110, 129, 133), (166, 74, 118), (219, 142, 185),
    (79, 210, 114), (178, 90, 62), (65, 70, 15), (127, 167, 115), (59, 105, 106), (142, 108, 45),
    (196, 172, 0), (95, 54, 80), (128, 76, 255), (201, 57, 1), (246, 0, 122), (191, 162, 208)]


@DATASETS.register_module()
class CocoDataset(BaseDetDataset):
    """COCO-format instance annotations.

    ``data_prefix=dict(img='train2017/')`` is the image folder (relative to ``data_root``);
    ``data_prefix['seg']``, when given, the folder of semantic maps.
    """

    METAINFO = {'classes': COCO_CLASSES, 'palette': COCO_PALETTE}
    PREPARE_HINT = ('put COCO-format data there (e.g. COCO 2017: annotations/instances_*.json '
                    'and train2017/ under data_root), or point data_root / ann_file / '
                    'data_prefix.img at your own COCO-format json and images')

    def load_data_list(self) -> List[dict]:
        """Parse the json; map category ids to labels by class name."""
        try:
            raw = load(self.ann_file, file_format='json', backend_args=self.backend_args)
        except ValueError as exc:  # json.JSONDecodeError names neither the file nor a fix
            raise ValueError(f'{self.ann_file} is not valid JSON ({exc}); a file cut short '
                             'by an interrupted download or copy looks like this: fetch or '
                             'write it again') from None
        if not isinstance(raw, dict) or not isinstance(raw.get('images'), list) or \
                not isinstance(raw.get('categories'), list):
            raise ValueError(f'{self.ann_file} is not a COCO instances json: it needs '
                             '"images" and "categories" lists (and "annotations")')
        self._check_entries(raw['images'], 'images', ('id', 'file_name'))
        self._check_entries(raw['categories'], 'categories', ('id', 'name'))
        classes = self._metainfo['classes']
        names = [c['name'] for c in raw['categories']]
        missing = [c for c in classes if c not in names]
        if missing:
            raise class_mismatch_error(missing, names, self.ann_file)
        # by name, so duplicated or reordered category ids still give the right label
        self.cat2label = {c['id']: classes.index(c['name'])
                          for c in raw['categories'] if c['name'] in classes}
        first_id = {}
        for c in raw['categories']:
            first_id.setdefault(c['name'], c['id'])
        self.cat_ids = [first_id[name] for name in classes]
        self._known_cat_ids = {c['id'] for c in raw['categories']}

        if 'annotations' not in raw:
            print_log(f'{self.ann_file} has no "annotations" list: every image is '
                      'background only', logger='current', level=logging.WARNING)
        anns = raw.get('annotations') or []
        if not isinstance(anns, list) or not all(isinstance(a, dict) for a in anns):
            raise ValueError(f'"annotations" in {self.ann_file} must be a list of objects, '
                             f'got {type(anns).__name__}')
        ann_ids = [a.get('id') for a in anns]
        if None in ann_ids:
            raise ValueError(f'{ann_ids.count(None)} annotations in {self.ann_file} have no id; '
                             'COCO evaluation matches by id, so give every annotation its own '
                             'id (1, 2, ...)')
        if len(set(ann_ids)) != len(ann_ids):
            raise ValueError(f'annotation ids in {self.ann_file} are not unique '
                             f'({len(ann_ids) - len(set(ann_ids))} repeated); COCO evaluation '
                             'matches by id, so give every annotation its own id')
        image_ids = Counter(img['id'] for img in raw['images'])
        repeated = sorted((i for i, n in image_ids.items() if n > 1), key=str)
        if repeated:
            names = {i: [img['file_name'] for img in raw['images'] if img['id'] == i]
                     for i in repeated[:5]}
            raise ValueError(f'image ids in {self.ann_file} are not unique: {len(repeated)} '
                             f'repeated, e.g. {names}; annotations name their image by id, '
                             'so each image needs its own id')
        by_image = defaultdict(list)
        for ann in anns:
            if ann.get('image_id') in image_ids:
                by_image[ann['image_id']].append(ann)
            else:
                self.count_skipped(ORPHAN_ANNOTATION, ann['id'])

        data_list = []
        for img in raw['images']:
            if not all(isinstance(img.get(k), (int, float)) and img[k] > 0
                       for k in ('height', 'width')):
                self._skip_image(IMAGE_NO_SIZE, f"image {img.get('file_name', img.get('id'))}")
                continue
            data_list.append(self.parse_data_info(
                dict(raw_img_info=img, raw_ann_info=by_image.get(img['id'], []))))
        return data_list

    def _check_entries(self, entries: list, section: str, keys: tuple) -> None:
        """Every entry of ``section`` is an object with ``keys``, or a ValueError naming the
        file, the entry and the missing key."""
        for index, entry in enumerate(entries):
            missing = [k for k in keys if not isinstance(entry, dict) or k not in entry]
            if missing:
                shown = repr(entry)
                shown = shown if len(shown) <= 120 else shown[:117] + '...'
                raise ValueError(f'{self.ann_file}: {section}[{index}] has no {missing} '
                                 f'({shown}); every entry of "{section}" needs {list(keys)}')

    def parse_data_info(self, raw_data_info: dict) -> dict:
        """One image entry and its annotations -> a data_info."""
        img = raw_data_info['raw_img_info']
        height, width = int(img['height']), int(img['width'])
        file_name = img['file_name']
        seg_prefix = self.data_prefix.get('seg')
        info = dict(img_path=osp.join(self.img_prefix, file_name), img_id=img['id'],
                    height=height, width=width, seg_map_path=None)
        if seg_prefix is not None:
            stem = file_name.rsplit('.', 1)[0]
            info['seg_map_path'] = osp.join(seg_prefix, stem + self.seg_map_suffix)
        instances = []
        for ann in raw_data_info['raw_ann_info']:
            if ann.get('ignore', False):
                continue
            ann_id = ann.get('id')
            category = ann.get('category_id')
            if category not in self._known_cat_ids:
                self.count_skipped(UNKNOWN_CATEGORY, ann_id)
                continue
            if category not in self.cat2label:
                self.count_skipped(OTHER_CLASS)
                continue
            area = ann.get('area', 1)
            if isinstance(area, (int, float)) and area <= 0:
                self.count_skipped(BOX_EMPTY, ann_id)
                continue
            try:
                x, y, w, h = ann['bbox']
                box = [x, y, x + w, y + h]
            except (KeyError, TypeError, ValueError):
                box = None  # counted as malformed below
            box = self._clean_box(box, height, width, ann_id)
            if box is None:
                continue
            # an unusable mask is dropped, not the box: LoadAnnotations(with_mask=True)
            # ignores such an instance, box-only training keeps it (MMDetection's rule)
            mask, _ = self._clean_mask(ann.get('segmentation'), height, width, ann_id)
            instance = dict(bbox=box, bbox_label=self.cat2label[category],
                            ignore_flag=int(bool(ann.get('iscrowd', 0))))
            if mask is not None:
                instance['mask'] = mask
            instances.append(instance)
        info['instances'] = instances
        return info
