"""LVISV1Dataset: LVIS v1 (COCO-format json, 1203 categories, federated annotation).

LVIS v1 images are COCO 2017's: an image entry has no ``file_name`` but a ``coco_url``
(``http://images.cocodataset.org/train2017/000000391895.jpg``) whose path after the host is
the image's path under ``data_root`` (``train2017/000000391895.jpg``), so
``data_prefix=dict(img='')`` with COCO's ``train2017/`` and ``val2017/`` next to the
annotations. Everything else is :class:`CocoDataset`'s (labels by class name, crowd as
ignored, bad annotations counted).

Federated annotation: an image's ``neg_category_ids`` (verified absent) and
``not_exhaustive_category_ids`` (not every instance boxed) are kept in its data_info; they
matter to evaluation, which :class:`~mmft.evaluation.metrics.LVISMetric` does with the
``lvis`` package from the annotation file itself.
"""
from mmft.registry import DATASETS
from .class_names import LVIS_V1_CLASSES
from .coco import CocoDataset

_COCO_HOST = 'http://images.cocodataset.org/'


@DATASETS.register_module()
class LVISV1Dataset(CocoDataset):
    """LVIS v1 instance annotations (boxes and polygon masks) on COCO 2017 images."""

    METAINFO = {'classes': LVIS_V1_CLASSES}
    PREPARE_HINT = ('put LVIS v1 there: annotations/lvis_v1_{train,val}.json next to COCO '
                    "2017's train2017/ and val2017/ under data_root (see docs/dataset_prepare.md)")

    def _check_entries(self, entries: list, section: str, keys: tuple) -> None:
        """CocoDataset's entry check (on main since issue 16), with an LVIS image's
        ``coco_url`` standing in for its ``file_name``."""
        if section == 'images':
            entries = [dict(e, file_name=e['coco_url']) if isinstance(e, dict) and
                       'file_name' not in e and 'coco_url' in e else e for e in entries]
        super()._check_entries(entries, section, keys)

    def parse_data_info(self, raw_data_info: dict) -> dict:
        img = raw_data_info['raw_img_info']
        if 'file_name' not in img:
            url = img.get('coco_url')
            if not isinstance(url, str):
                raise ValueError(f"LVIS image {img.get('id')} in {self.ann_file} has neither "
                                 'file_name nor coco_url; is this an LVIS v1 json?')
            # train2017/xxx.jpg: LVIS v1's val images come from COCO's train2017 too
            img = dict(img, file_name=url.replace(_COCO_HOST, '', 1))
        info = super().parse_data_info(dict(raw_data_info, raw_img_info=img))
        info['neg_category_ids'] = list(img.get('neg_category_ids', []))
        info['not_exhaustive_category_ids'] = list(img.get('not_exhaustive_category_ids', []))
        return info
