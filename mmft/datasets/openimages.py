"""OpenImagesDataset: Open Images (V6 boxable) detection from its csv files, with the class
hierarchy that hierarchy-aware evaluation needs.

Files (MMDetection's arguments, relative to ``data_root``):
- ``ann_file``: ``ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,
  IsTruncated,IsGroupOf,IsDepiction,IsInside`` with a header; coordinates are fractions of the
  image size; images are ``data_prefix['img']/{ImageID}.jpg``;
- ``label_file``: ``MID,Display name`` lines (no header): the class list, in label order;
- ``meta_file``: a pickle of ``[{'filename': ..., 'ori_shape': (h, w, 3)}, ...]`` (image sizes,
  as MMDetection's converter writes it);
- ``hierarchy_file``: the json tree ``{'LabelName': MID, 'Subcategory': [...]}``;
- ``image_level_ann_file`` (optional, for evaluation): ``ImageID,Source,LabelName,Confidence``
  with a header; confidence 1 = verified present, 0 = verified absent.

Each instance keeps ``is_group_of`` (and the other flags); each image its
``image_level_labels`` / ``confidences``. ``metainfo['RELATION_MATRIX']`` is ``(K, K)`` with
``[c, a] = 1`` when ``a`` is ``c`` or one of its ancestors.
"""
import csv
import io
import os.path as osp
from collections import OrderedDict, defaultdict
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmengine import fileio

from mmft.registry import DATASETS
from .base_det_dataset import BaseDetDataset

_FLAGS = ('is_occluded', 'is_truncated', 'is_group_of', 'is_depiction', 'is_inside')


def _csv_rows(path: str, backend_args: Optional[dict]) -> List[List[str]]:
    text = fileio.get_text(path, backend_args=backend_args)
    return [row for row in csv.reader(io.StringIO(text)) if row]


@DATASETS.register_module()
class OpenImagesDataset(BaseDetDataset):
    """Open Images boxes (see the module docstring for the files).

    Args:
        label_file: Class descriptions csv (the class list).
        meta_file: Pickle of image metas (sizes).
        hierarchy_file: Class hierarchy json.
        image_level_ann_file: Human-verified image-level labels csv, or None.
    """

    METAINFO: dict = dict(dataset_type='oid_v6')
    PREPARE_HINT = ('put Open Images there: annotations/*-annotations-bbox.csv, '
                    'class-descriptions-boxable.csv, bbox_labels_600_hierarchy.json, '
                    '*-image-metas.pkl and the images (see docs/dataset_prepare.md)')

    def __init__(self, label_file: str, meta_file: str, hierarchy_file: str,
                 image_level_ann_file: Optional[str] = None, **kwargs) -> None:
        self.label_file = label_file
        self.meta_file = meta_file
        self.hierarchy_file = hierarchy_file
        self.image_level_ann_file = image_level_ann_file
        super().__init__(**kwargs)

    def _join_prefix(self) -> None:
        super()._join_prefix()
        for attr in ('label_file', 'meta_file', 'hierarchy_file', 'image_level_ann_file'):
            path = getattr(self, attr)
            if path and self.data_root and not osp.isabs(path) and '://' not in path:
                setattr(self, attr, osp.join(self.data_root, path))

    def _check_paths(self) -> None:
        super()._check_paths()
        for attr in ('label_file', 'meta_file', 'hierarchy_file', 'image_level_ann_file'):
            path = getattr(self, attr)
            if path and '://' not in path and not osp.isfile(path):
                raise FileNotFoundError(f'OpenImagesDataset: {attr} {path!r} does not exist; '
                                        f'{self.PREPARE_HINT}')

    def load_data_list(self) -> List[dict]:
        """Parse the class list, hierarchy, box csv, metas and image-level labels."""
        classes, self.label_id_mapping = self._parse_label_file()
        self._metainfo['classes'] = classes
        self._metainfo['RELATION_MATRIX'] = self._relation_matrix(len(classes))
        sizes = self._image_sizes()
        by_image: Dict[str, List[dict]] = OrderedDict()
        rows = _csv_rows(self.ann_file, self.backend_args)
        for line, row in enumerate(rows[1:], start=2):
            try:
                img_id, mid = row[0], row[2]
                x1, x2, y1, y2 = (float(v) for v in row[4:8])
                flags = [int(v) == 1 for v in row[8:13]]
            except (IndexError, ValueError):
                raise ValueError(f'{self.ann_file} line {line} is not an Open Images box row '
                                 f'(ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,'
                                 f'IsOccluded,...): {row}') from None
            if mid not in self.label_id_mapping:
                raise ValueError(f'{self.ann_file} line {line}: label {mid!r} is not in the '
                                 f'label_file {self.label_file}')
            if img_id not in sizes:
                raise ValueError(f'{self.ann_file} line {line}: image {img_id!r} has no entry in '
                                 f'meta_file {self.meta_file}; regenerate the metas')
            h, w = sizes[img_id]
            instance = dict(bbox=[x1 * w, y1 * h, x2 * w, y2 * h],
                            bbox_label=self.label_id_mapping[mid], ignore_flag=0)
            instance.update(zip(_FLAGS, flags))
            by_image.setdefault(img_id, []).append(instance)
        image_labels = self._image_level_labels()
        data_list = []
        for img_id, instances in by_image.items():
            h, w = sizes[img_id]
            info = dict(img_path=osp.join(self.img_prefix, f'{img_id}.jpg'), img_id=img_id,
                        height=h, width=w, seg_map_path=None, instances=instances)
            if image_labels is not None:
                labels = image_labels.get(img_id, [])
                info['image_level_labels'] = np.array([lb for lb, _ in labels], np.int64)
                info['confidences'] = np.array([c for _, c in labels], np.float32)
            data_list.append(info)
        return data_list

    def _parse_label_file(self) -> Tuple[Tuple[str, ...], Dict[str, int]]:
        rows = _csv_rows(self.label_file, self.backend_args)
        mids = [r[0] for r in rows]
        if len(set(mids)) != len(mids):
            raise ValueError(f'label_file {self.label_file} lists a label id twice')
        return tuple(r[1] for r in rows), {mid: i for i, mid in enumerate(mids)}

    def _image_sizes(self) -> Dict[str, Tuple[int, int]]:
        metas = fileio.load(self.meta_file, file_format='pkl', backend_args=self.backend_args)
        sizes = {}
        for meta in metas:
            name = osp.splitext(osp.basename(meta['filename']))[0]
            sizes[name] = tuple(int(v) for v in meta['ori_shape'][:2])
        return sizes

    def _image_level_labels(self) -> Optional[Dict[str, List[Tuple[int, float]]]]:
        if self.image_level_ann_file is None:
            return None
        labels = defaultdict(list)
        for row in _csv_rows(self.image_level_ann_file, self.backend_args)[1:]:
            # verified labels of classes without boxes are not among the evaluated classes
            if row[2] in self.label_id_mapping:
                labels[row[0]].append((self.label_id_mapping[row[2]], float(row[3])))
        return labels

    def _relation_matrix(self, num_classes: int) -> np.ndarray:
        tree = fileio.load(self.hierarchy_file, file_format='json',
                           backend_args=self.backend_args)
        matrix = np.eye(num_classes, dtype=np.float64)

        def visit(node: dict, ancestors: List[int]) -> None:
            for child in node.get('Subcategory', []):
                mid = child.get('LabelName')
                if mid not in self.label_id_mapping:
                    raise ValueError(f'hierarchy_file {self.hierarchy_file}: label {mid!r} is '
                                     f'not in the label_file {self.label_file}')
                index = self.label_id_mapping[mid]
                matrix[index, ancestors] = 1
                visit(child, ancestors + [index])

        visit(tree, [])  # the root ('Entity') is no class
        return matrix
