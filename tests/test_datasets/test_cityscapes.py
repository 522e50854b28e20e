"""CityscapesDataset on json written by tools/dataset_converters/cityscapes.py from a tiny tree."""
import os

import pytest

from mmft.datasets import CityscapesDataset

from tests.test_datasets.dataset_trees import make_cityscapes

CLASSES = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')


@pytest.fixture
def cityscapes(tmp_path):
    return make_cityscapes(tmp_path / 'cityscapes')


def _dataset(root, **kwargs):
    return CityscapesDataset(data_root=root,
                             ann_file='annotations/instancesonly_filtered_gtFine_train.json',
                             data_prefix=dict(img='leftImg8bit/train/'), **kwargs)


def test_reads_converter_output(cityscapes):
    dataset = _dataset(cityscapes, pipeline=[dict(type='LoadImageFromFile'),
                                             dict(type='LoadAnnotations', with_mask=True)])
    assert dataset.metainfo['classes'] == CLASSES
    assert len(dataset) == 2 and not dataset.skipped
    info = dataset.get_data_info(0)
    assert info['img_path'].endswith('leftImg8bit/train/aachen/aachen_000000_000019_'
                                     'leftImg8bit.png')
    by_label = {CLASSES[i['bbox_label']]: i for i in info['instances']}
    assert by_label['car']['bbox'] == [8, 4, 30, 20] and by_label['car']['ignore_flag'] == 0
    assert by_label['person']['bbox'] == [40, 24, 50, 44]
    assert by_label['rider']['ignore_flag'] == 1  # crowd region
    results = dataset[0]
    car = [CLASSES[i] for i in results['gt_bboxes_labels']].index('car')
    mask = results['gt_masks'].masks[car]  # RLE decoded to exactly the id region
    assert mask.sum() == 16 * 22 and mask[4:20, 8:30].all()


def test_filter_empty_gt_drops_crowd_only_images(cityscapes):
    dataset = _dataset(cityscapes, filter_cfg=dict(filter_empty_gt=True, min_size=32))
    assert len(dataset) == 1
    assert 'aachen_000000' in dataset.get_data_info(0)['img_path']


def test_missing_json_says_how_to_prepare(tmp_path):
    os.makedirs(tmp_path / 'leftImg8bit' / 'train')
    with pytest.raises(FileNotFoundError) as info:
        _dataset(str(tmp_path))
    assert 'instancesonly_filtered_gtFine_train.json' in str(info.value)
    assert 'tools/dataset_converters/cityscapes.py' in str(info.value)
