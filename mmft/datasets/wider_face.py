"""WIDERFaceDataset: WIDER FACE in PASCAL VOC xml (e.g. the wider-face-pascal-voc-annotations
conversion), one class ``face``.

Layout (MMDetection's): ``ann_file`` lists image ids (``train.txt``); ``data_prefix['img']``
(``WIDER_train``) holds ``Annotations/{id}.xml``, and each xml's ``<folder>`` names the
event folder under it that holds ``{id}.jpg`` (``WIDER_train/0--Parade/{id}.jpg``). Corners
are 0-based pixels, taken as they are (no VOC ``-1``). ``filter_cfg=dict(bbox_min_size=17)``
marks smaller faces ignored in training, as MMDetection's config does.
"""
import os.path as osp
import xml.etree.ElementTree as ET

from mmft.registry import DATASETS
from .voc import XMLDataset, _text


@DATASETS.register_module()
class WIDERFaceDataset(XMLDataset):
    """WIDER FACE face boxes from VOC-style xml files."""

    METAINFO = {'classes': ('face', ), 'palette': [(0, 255, 0)]}
    PREPARE_HINT = ('expected data_root/WIDER_train/Annotations/*.xml and data_root/WIDER_train/'
                    '<event folder>/*.jpg with train.txt listing the ids (see '
                    'docs/dataset_prepare.md)')
    COORD_OFFSET = 0

    @property
    def sub_data_root(self) -> str:
        return self.data_prefix.get('img', '')

    def _img_path(self, img_info: dict, root: ET.Element) -> str:
        try:
            folder = _text(root, 'folder')
        except ValueError:
            raise ValueError(f"WIDERFaceDataset: {img_info['xml_path']} has no <folder>, the "
                             'event folder of its image (e.g. 0--Parade)') from None
        return osp.join(self.sub_data_root, folder, f"{img_info['img_id']}.jpg")
