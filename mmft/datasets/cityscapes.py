"""CityscapesDataset: Cityscapes' 8 instance classes from COCO-format json.

The json is what tools/dataset_converters/cityscapes.py writes
(``annotations/instancesonly_filtered_gtFine_{train,val}.json``: ``file_name``
``{city}/{name}_leftImg8bit.png`` relative to ``leftImg8bit/{split}/``, category ids are
Cityscapes label ids, RLE masks, crowd regions with ``iscrowd=1``). As in MMDetection,
``filter_empty_gt`` also drops images whose instances are all crowd regions.
"""
from mmft.registry import DATASETS
from .coco import CocoDataset


@DATASETS.register_module()
class CityscapesDataset(CocoDataset):
    """Cityscapes instances: person, rider, car, truck, bus, train, motorcycle, bicycle."""

    METAINFO = {
        'classes': ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle'),
        'palette': [(220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
                    (0, 80, 100), (0, 0, 230), (119, 11, 32)]
    }
    PREPARE_HINT = ('download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip into '
                    'data/cityscapes/, then write the json files with '
                    '"python tools/dataset_converters/cityscapes.py data/cityscapes '
                    '-o data/cityscapes/annotations"')

    def _is_empty(self, data_info: dict) -> bool:
        return all(inst['ignore_flag'] for inst in data_info['instances'])
