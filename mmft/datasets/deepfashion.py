"""DeepFashionDataset: DeepFashion In-shop clothes retrieval's segmentation subset
(COCO-format json, 15 classes, boxes and polygon masks)."""
from mmft.registry import DATASETS
from .coco import CocoDataset

DEEPFASHION_CLASSES = ('top', 'skirt', 'leggings', 'dress', 'outer', 'pants', 'bag',
                       'neckwear', 'headwear', 'eyeglass', 'belt', 'footwear', 'hair', 'skin',
                       'face')


@DATASETS.register_module()
class DeepFashionDataset(CocoDataset):
    """DeepFashion In-shop instance annotations (labels by class name)."""

    METAINFO = {'classes': DEEPFASHION_CLASSES}
    PREPARE_HINT = ('put DeepFashion In-shop there: Anno/segmentation/DeepFashion_segmentation_'
                    '{train,query,gallery}.json and Img/ under data_root')
