"""Objects365V2Dataset: Objects365 v2 (COCO-format json, 365 categories).

The v2 json's ``file_name`` entries are ``images/v1/patch6/objects365_v1_00320532.jpg`` or
``images/v2/patch16/...``; images are read from ``data_prefix['img']/patchN/<name>``, the
layout the released archives unpack to. Three images of the release are corrupt and left
out, as MMDetection does.
"""
import os.path as osp
from typing import List

from mmft.registry import DATASETS
from .class_names import OBJECTS365_V2_CLASSES
from .coco import CocoDataset

#: images of the Objects365 v2 release that cannot be decoded
OBJECTS365_V2_BROKEN = (osp.join('patch16', 'objects365_v2_00908726.jpg'),
                        osp.join('patch6', 'objects365_v1_00320532.jpg'),
                        osp.join('patch6', 'objects365_v1_00320534.jpg'))


@DATASETS.register_module()
class Objects365V2Dataset(CocoDataset):
    """Objects365 v2 boxes (labels by class name, as :class:`CocoDataset`)."""

    METAINFO = {'classes': OBJECTS365_V2_CLASSES}
    PREPARE_HINT = ('put Objects365 v2 there: annotations/zhiyuan_objv2_{train,val}.json and '
                    'train/patch*/, val/patch*/ under data_root')

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        return [d for d in data_list
                if osp.join(*d['img_path'].split(osp.sep)[-2:]) not in OBJECTS365_V2_BROKEN]

    def parse_data_info(self, raw_data_info: dict) -> dict:
        img = raw_data_info['raw_img_info']
        folder, name = osp.split(img['file_name'])
        # keep only patchN/name: the json's images/v1/, images/v2/ are not on disk
        img = dict(img, file_name=osp.join(osp.basename(folder), name))
        return super().parse_data_info(dict(raw_data_info, raw_img_info=img))
