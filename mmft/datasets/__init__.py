"""Datasets, samplers and transforms; importing this registers them all."""
from .base_det_dataset import BaseDetDataset
from .cityscapes import CityscapesDataset
from .coco import CocoDataset
from .dataset_wrappers import (ClassBalancedDataset, ConcatDataset, MultiImageMixDataset,
                               RepeatDataset)
from .deepfashion import DeepFashionDataset
from .lvis import LVISV1Dataset
from .objects365 import Objects365V2Dataset
from .openimages import OpenImagesDataset
from .samplers import AspectRatioBatchSampler
from .transforms import *  # noqa: F401,F403
from .voc import VOCDataset, XMLDataset
from .wider_face import WIDERFaceDataset

__all__ = [
    'BaseDetDataset', 'CocoDataset', 'CityscapesDataset', 'XMLDataset', 'VOCDataset',
    'RepeatDataset', 'ConcatDataset', 'ClassBalancedDataset', 'AspectRatioBatchSampler',
    'LVISV1Dataset', 'Objects365V2Dataset', 'WIDERFaceDataset', 'DeepFashionDataset',
    'OpenImagesDataset', 'MultiImageMixDataset'
]
