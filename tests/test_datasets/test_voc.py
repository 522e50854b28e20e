"""VOCDataset / XMLDataset on hand-written VOC2007 and VOC2012 trees."""
import os.path as osp

import pytest

from mmft.datasets import VOCDataset, XMLDataset
from mmft.datasets.base_det_dataset import OTHER_CLASS
from mmft.datasets.voc import VOC_CLASSES, XML_MISSING
from mmft.registry import DATASETS

from tests.test_datasets.dataset_trees import make_voc, voc_xml


@pytest.fixture
def voc2007(tmp_path):
    xmls = {
        '000001': voc_xml([('dog', 0, (11, 6, 20, 25)), ('person', 1, (1, 1, 10, 10))]),
        '000002': voc_xml([('car', 0, (2, 3, 30, 31)), ('unicorn', 0, (1, 1, 5, 5))]),
        '000003': voc_xml([('car', 0, (2, 3, 40, 31))], size=False),  # size from the image
    }
    # 000009 has no xml
    return make_voc(tmp_path, 2007, xmls, ids=['000001', '000002', '000003', '000009'])


def test_reads_voc2007(voc2007):
    dataset = DATASETS.build(dict(
        type='VOCDataset', data_root=voc2007, ann_file='VOC2007/ImageSets/Main/trainval.txt',
        data_prefix=dict(sub_data_root='VOC2007/'), metainfo=dict(classes=('car', 'dog',
                                                                           'person'))))
    assert dataset.metainfo['dataset_type'] == 'VOC2007'
    assert len(dataset) == 3
    first = dataset.get_data_info(0)
    assert first['img_path'] == osp.join(voc2007, 'VOC2007/JPEGImages/000001.jpg')
    assert (first['height'], first['width']) == (32, 48)
    # 1-based VOC corners: 1 is subtracted; difficult -> ignored
    assert first['instances'] == [
        dict(bbox=[10.0, 5.0, 19.0, 24.0], bbox_label=1, ignore_flag=0),
        dict(bbox=[0.0, 0.0, 9.0, 9.0], bbox_label=2, ignore_flag=1)]
    assert dataset.get_data_info(1)['instances'] == [
        dict(bbox=[1.0, 2.0, 29.0, 30.0], bbox_label=0, ignore_flag=0)]
    third = dataset.get_data_info(2)
    assert (third['height'], third['width']) == (32, 48)
    assert third['instances'][0]['bbox'] == [1.0, 2.0, 39.0, 30.0]
    assert dataset.skipped == {OTHER_CLASS: 1, XML_MISSING: 1}


def test_bbox_min_size_ignores_small_boxes_in_training_only(voc2007):
    kwargs = dict(data_root=voc2007, ann_file='VOC2007/ImageSets/Main/trainval.txt',
                  data_prefix=dict(sub_data_root='VOC2007/'),
                  metainfo=dict(classes=('car', 'dog', 'person')),
                  filter_cfg=dict(bbox_min_size=12))
    flags = [i['ignore_flag'] for i in VOCDataset(**kwargs).get_data_info(0)['instances']]
    assert flags == [1, 1]  # 9 x 19 and 9 x 9 boxes
    # an evaluation set must be complete: 000009 has no xml
    with pytest.raises(RuntimeError, match=r'000009.xml \(.*xml is missing\) in .*must be complete'):
        VOCDataset(test_mode=True, **kwargs)
    kwargs['ann_file'] = 'VOC2007/ImageSets/Main/first.txt'
    with open(osp.join(voc2007, kwargs['ann_file']), 'w') as f:
        f.write('000001\n')
    test = VOCDataset(test_mode=True, **kwargs)
    assert [i['ignore_flag'] for i in test.get_data_info(0)['instances']] == [0, 1]


def test_default_classes_and_voc2012(tmp_path):
    root = make_voc(tmp_path, 2012, {'2012_000001': voc_xml([('person', 0, (1, 1, 9, 9))])})
    # the default 20 classes: some have no object here, but no unknown name either
    dataset = VOCDataset(data_root=root, ann_file='VOC2012/ImageSets/Main/trainval.txt',
                         data_prefix=dict(sub_data_root='VOC2012/'))
    assert dataset.metainfo['classes'] == VOC_CLASSES and len(VOC_CLASSES) == 20
    assert dataset.metainfo['dataset_type'] == 'VOC2012'
    assert dataset.get_data_info(0)['instances'][0]['bbox_label'] == VOC_CLASSES.index('person')


def test_misspelt_class_is_an_error(voc2007):
    with pytest.raises(ValueError) as info:
        XMLDataset(data_root=voc2007, ann_file='VOC2007/ImageSets/Main/trainval.txt',
                   data_prefix=dict(sub_data_root='VOC2007/'),
                   metainfo=dict(classes=('car', 'dgo', 'person')))
    message = str(info.value)
    assert "classes in ann_file don't match metainfo.classes: missing ['dgo']" in message
    assert "(available: ['car', 'dog', 'person', 'unicorn'])" in message


def test_missing_list_file_names_it(voc2007):
    with pytest.raises(FileNotFoundError, match='test.txt.*does not exist.*VOCdevkit'):
        VOCDataset(data_root=voc2007, ann_file='VOC2007/ImageSets/Main/test.txt',
                   data_prefix=dict(sub_data_root='VOC2007/'))


def test_one_pixel_boxes_stay_and_a_class_absent_from_a_split_is_allowed(tmp_path):
    root = make_voc(tmp_path, 2007, {'000001': voc_xml([('car', 0, (1, 4, 1, 9)),
                                                        ('person', 0, (3, 3, 9, 9))])})
    dataset = DATASETS.build(dict(
        type='VOCDataset', data_root=root, ann_file='VOC2007/ImageSets/Main/trainval.txt',
        data_prefix=dict(sub_data_root='VOC2007/'), metainfo=dict(classes=('car', 'bus'))))
    # xmin == xmax is one pixel wide under VOC's inclusive corners; xmin=1 becomes 0, unclipped
    assert dataset.get_data_info(0)['instances'] == [
        dict(bbox=[0.0, 3.0, 0.0, 8.0], bbox_label=0, ignore_flag=0)]


def test_inverted_box_is_dropped_and_counted(tmp_path):
    root = make_voc(tmp_path, 2007, {'000001': voc_xml([('car', 0, (9, 4, 1, 9)),
                                                        ('car', 0, (3, 3, 9, 9))])})
    dataset = DATASETS.build(dict(
        type='VOCDataset', data_root=root, ann_file='VOC2007/ImageSets/Main/trainval.txt',
        data_prefix=dict(sub_data_root='VOC2007/'), metainfo=dict(classes=('car',))))
    assert [i['bbox'] for i in dataset.get_data_info(0)['instances']] == [[2.0, 2.0, 8.0, 8.0]]
    assert sum(dataset.skipped.values()) == 1
