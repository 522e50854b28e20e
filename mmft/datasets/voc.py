"""PASCAL VOC: XMLDataset (VOC-style xml annotations) and VOCDataset (the 20 classes).

Layout (MMDetection's): ``ann_file`` lists image ids (``VOC2007/ImageSets/Main/trainval.txt``),
``data_prefix=dict(sub_data_root='VOC2007/')`` holds ``Annotations/{id}.xml`` and
``JPEGImages/{id}.jpg``. Coordinates are 1-based in VOC: 1 is subtracted from every corner
(MMDetection's rule, also in tools/dataset_converters/voc2coco.py). ``difficult`` objects and,
in training, boxes smaller than ``filter_cfg['bbox_min_size']`` are kept with
``ignore_flag=1``. VOC has no category list: a configured class that no object uses is an
error when objects of unconfigured classes exist (a misspelt or wrong class list), a warning
otherwise.
"""
import difflib
import logging
import os.path as osp
import xml.etree.ElementTree as ET
from typing import List, Optional

import cv2
import numpy as np
from mmengine import fileio
from mmengine.logging import print_log

from mmft.registry import DATASETS
from .base_det_dataset import (BOX_EMPTY, BOX_MALFORMED, IMAGE_NO_SIZE, OTHER_CLASS, BaseDetDataset,
                               class_mismatch_error)

XML_MISSING = 'images whose annotation xml is missing (dropped)'
XML_UNREADABLE = 'images whose annotation xml is not valid xml (dropped)'

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair',
               'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
               'sheep', 'sofa', 'train', 'tvmonitor')
VOC_PALETTE = [(106, 0, 228), (119, 11, 32), (165, 42, 42), (0, 0, 192), (197, 226, 255),
               (0, 60, 100), (0, 0, 142), (255, 77, 255), (153, 69, 1), (120, 166, 157),
               (0, 182, 199), (0, 226, 252), (182, 182, 255), (0, 0, 230), (220, 20, 60),
               (163, 255, 0), (0, 82, 0), (3, 95, 161), (0, 80, 100), (183, 130, 88)]


def _text(node: Optional[ET.Element], tag: str) -> str:
    child = None if node is None else node.find(tag)
    if child is None or child.text is None:
        raise ValueError(f'missing <{tag}>')
    return child.text.strip()


@DATASETS.register_module()
class XMLDataset(BaseDetDataset):
    """VOC-style xml annotations; ``metainfo=dict(classes=...)`` is required.

    Args:
        img_subdir: Image folder under ``sub_data_root``.
        ann_subdir: Xml folder under ``sub_data_root``.
    """

    PREPARE_HINT = ('expected data_root/{sub_data_root}/ImageSets/Main/*.txt, Annotations/ and '
                    'JPEGImages/ (VOC layout)')
    #: subtracted from every xml corner: VOC's are 1-based
    COORD_OFFSET = 1

    def __init__(self, img_subdir: str = 'JPEGImages', ann_subdir: str = 'Annotations',
                 **kwargs) -> None:
        self.img_subdir = img_subdir
        self.ann_subdir = ann_subdir
        super().__init__(**kwargs)

    @property
    def sub_data_root(self) -> str:
        return self.data_prefix.get('sub_data_root', '')

    @property
    def bbox_min_size(self) -> Optional[float]:
        return None if self.filter_cfg is None else self.filter_cfg.get('bbox_min_size')

    def _required_dirs(self) -> List[str]:
        return [self.sub_data_root] if self.sub_data_root else []

    def load_data_list(self) -> List[dict]:
        """Read the id list and parse one xml per id."""
        classes = self._metainfo.get('classes')
        if classes is None:
            raise ValueError(f'{type(self).__name__} needs metainfo=dict(classes=(...))')
        self.cat2label = {name: i for i, name in enumerate(classes)}
        self._names_seen = set()
        img_ids = [line.split()[0] for line in
                   fileio.list_from_file(self.ann_file, backend_args=self.backend_args)
                   if line.strip()]
        data_list = []
        for img_id in img_ids:
            info = self.parse_data_info(dict(
                img_id=img_id, file_name=osp.join(self.img_subdir, f'{img_id}.jpg'),
                xml_path=osp.join(self.sub_data_root, self.ann_subdir, f'{img_id}.xml')))
            if info is not None:
                data_list.append(info)
        missing = [c for c in classes if c not in self._names_seen]
        others = sorted(self._names_seen - set(classes))
        misspelt = [c for c in missing if difflib.get_close_matches(c, others, n=1, cutoff=0.6)]
        if misspelt or (missing and len(missing) == len(classes) and others):
            # a class whose name is close to an unselected one, or none found at all: a typo
            raise class_mismatch_error(missing, sorted(self._names_seen), self.ann_file)
        if missing:  # a subset of the classes may have no object in a small split
            print_log(f'{type(self).__name__} {self.ann_file}: no object of classes {missing}',
                      logger='current', level=logging.WARNING)
        return data_list

    def _image_size(self, img_path: str) -> Optional[tuple]:
        try:
            data = fileio.get(img_path, backend_args=self.backend_args)
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        except (OSError, cv2.error):
            return None
        return None if img is None else img.shape[:2]

    def _img_path(self, img_info: dict, root: ET.Element) -> str:
        """Where the image of ``img_info`` (and its parsed xml ``root``) is."""
        return osp.join(self.sub_data_root, img_info['file_name'])

    def parse_data_info(self, img_info: dict) -> Optional[dict]:
        """One id -> a data_info, or None (counted) when its xml is unusable."""
        try:
            root = ET.fromstring(fileio.get(img_info['xml_path'],
                                            backend_args=self.backend_args))
        except FileNotFoundError:
            self._skip_image(XML_MISSING, img_info['xml_path'])
            return None
        except ET.ParseError:
            self._skip_image(XML_UNREADABLE, img_info['xml_path'])
            return None
        img_path = self._img_path(img_info, root)
        try:
            size = root.find('size')
            height, width = int(_text(size, 'height')), int(_text(size, 'width'))
        except ValueError:  # MMDetection reads the image when <size> is missing
            height, width = self._image_size(img_path) or (0, 0)
        if height <= 0 or width <= 0:
            self._skip_image(IMAGE_NO_SIZE, img_info['xml_path'])
            return None
        min_size = None if self.test_mode else self.bbox_min_size
        instances = []
        for obj in root.findall('object'):
            try:
                name = _text(obj, 'name')
            except ValueError:
                self.skipped[BOX_MALFORMED] += 1
                continue
            self._names_seen.add(name)
            if name not in self.cat2label:
                self.skipped[OTHER_CLASS] += 1
                continue
            try:
                box_node = obj.find('bndbox')
                box = [float(int(float(_text(box_node, k))) - self.COORD_OFFSET)
                       for k in ('xmin', 'ymin', 'xmax', 'ymax')]
            except ValueError:
                self.skipped[BOX_MALFORMED] += 1
                continue
            # VOC corners are inclusive pixels (the devkit's +1 widths): xmin == xmax is a
            # 1-pixel box. Kept as parsed, unclipped, as MMDetection and the devkit score them
            if box[2] < box[0] or box[3] < box[1]:
                self.skipped[BOX_EMPTY] += 1
                continue
            difficult = obj.find('difficult')
            ignore = difficult is not None and (difficult.text or '0').strip() not in ('0', '')
            if min_size is not None:
                ignore |= box[2] - box[0] < min_size or box[3] - box[1] < min_size
            instances.append(dict(bbox=box, bbox_label=self.cat2label[name],
                                  ignore_flag=int(ignore)))
        return dict(img_path=img_path, img_id=img_info['img_id'], xml_path=img_info['xml_path'],
                    height=height, width=width, seg_map_path=None, instances=instances)


@DATASETS.register_module()
class VOCDataset(XMLDataset):
    """PASCAL VOC 2007 / 2012; ``metainfo['dataset_type']`` says which (for VOCMetric)."""

    METAINFO = {'classes': VOC_CLASSES, 'palette': VOC_PALETTE}
    PREPARE_HINT = ('extract VOCtrainval_06-Nov-2007.tar (and VOCtest, VOC2012) into '
                    'data/VOCdevkit/, so that data_root holds VOC2007/ImageSets/Main/'
                    'trainval.txt, VOC2007/Annotations/ and VOC2007/JPEGImages/')

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        year = [y for y in ('VOC2007', 'VOC2012') if y in self.sub_data_root]
        self._metainfo['dataset_type'] = year[0] if year else None
