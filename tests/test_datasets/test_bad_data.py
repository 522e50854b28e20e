"""Bad data: counted and logged once per reason, never a crash mid-epoch, never a wrong label;
set-up mistakes (paths, class lists) fail at construction with a clear message."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmft.datasets import CocoDataset
from mmft.datasets.base_det_dataset import (BOX_CLIPPED, BOX_EMPTY, BOX_MALFORMED, BOX_OUTSIDE,
                                            IMAGE_NO_SIZE, MASK_INVALID, POLYGON_SHORT,
                                            UNKNOWN_CATEGORY)
from mmft.datasets.transforms.loading import (IMAGE_MISSING, IMAGE_SIZE_MISMATCH,
                                              IMAGE_UNREADABLE)
from mmft.registry import DATASETS

from tests.test_datasets.dataset_trees import rect_polygon, write_coco, write_image

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_mask=True),
            dict(type='PackDetInputs', meta_keys=('img_id', 'img_path'))]


@pytest.fixture
def bad_tree(tmp_path):
    img = tmp_path / 'img'
    write_image(img / 'good.png', 32, 32)
    write_image(img / 'wrong_size.png', 20, 32)
    (img / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n not really a png')
    ann = dict(image_id=1, category_id=1)
    anns = [
        dict(ann, bbox=[2, 2, 8, 8], segmentation=rect_polygon(2, 2, 10, 10)),  # fine
        dict(ann, bbox=[20, 20, 20, 20], segmentation=rect_polygon(20, 20, 40, 40)),  # clipped
        dict(ann, bbox=[40, 40, 5, 5]),  # outside
        dict(ann, bbox=[5, 5, 0, 4]),  # zero width
        dict(ann, bbox=[5, 5, 4, 4], area=0),  # zero area
        dict(ann, bbox=[5, 5, 'x']),  # malformed
        dict(ann, bbox=[4, 4, 6, 6], segmentation=[[4, 4, 10, 4]]),  # 2-point polygon only
        # one bad part of two
        dict(ann, bbox=[4, 4, 6, 6], segmentation=rect_polygon(4, 4, 10, 10) + [[1, 2]]),
        dict(ann, category_id=77, bbox=[1, 1, 4, 4]),  # unknown category id
        dict(image_id=2, category_id=1, bbox=[1, 1, 4, 4]),
        dict(image_id=3, category_id=1, bbox=[1, 1, 4, 4]),
        dict(image_id=4, category_id=1, bbox=[1, 1, 4, 4]),
    ]
    images = [(1, 'good.png', 32, 32), (2, 'missing.png', 32, 32), (3, 'corrupt.png', 32, 32),
              (4, 'wrong_size.png', 32, 32)]
    ann_file = write_coco(tmp_path / 'bad.json', images, anns, [(1, 'thing')])
    with open(ann_file) as f:  # an image entry without a size
        text = f.read().replace('"images": [', '"images": [{"id": 9, "file_name": "x.png"}, ')
    with open(ann_file, 'w') as f:
        f.write(text)
    return str(tmp_path)


def _build(root, **kwargs):
    return DATASETS.build(dict(type='CocoDataset', data_root=root, ann_file='bad.json',
                               data_prefix=dict(img='img/'), metainfo=dict(classes=('thing', )),
                               pipeline=PIPELINE, **kwargs))


def test_parse_time_problems_are_counted_and_logged_once(bad_tree, log_messages):
    dataset = _build(bad_tree)
    assert dataset.skipped == {BOX_CLIPPED: 1, BOX_OUTSIDE: 1, BOX_EMPTY: 2, BOX_MALFORMED: 1,
                               POLYGON_SHORT: 2, MASK_INVALID: 1, UNKNOWN_CATEGORY: 1,
                               IMAGE_NO_SIZE: 1}
    for reason, count in dataset.skipped.items():
        lines = [m for m in log_messages if reason in m]
        assert len(lines) == 1 and f': {count} {reason}' in lines[0], reason
    good = dataset.get_data_info(0)['instances']
    assert [i['bbox'] for i in good] == [[2, 2, 10, 10], [20, 20, 32, 32], [4, 4, 10, 10],
                                         [4, 4, 10, 10]]
    # the instance whose only polygon was dropped keeps its box; with masks loaded it is
    # ignored (neither object nor background), box-only training uses it
    assert [i['ignore_flag'] for i in good] == [0, 0, 0, 0]
    assert 'mask' not in good[2] and good[3]['mask'] == [[4, 4, 10, 4, 10, 10, 4, 10]]
    packed = dataset[0]['data_samples']
    assert len(packed.gt_instances) == 3 and len(packed.ignored_instances) == 1
    assert packed.ignored_instances.masks.masks.sum() == 0


def test_unreadable_images_are_skipped_while_iterating(bad_tree, log_messages):
    dataset = _build(bad_tree)
    assert len(dataset) == 4
    for idx in range(len(dataset)):  # no exception: another image stands in
        assert dataset[idx]['data_samples'].img_path.endswith('good.png')
    assert dataset.skipped[IMAGE_MISSING] >= 1
    assert dataset.skipped[IMAGE_UNREADABLE] >= 1
    assert dataset.skipped[IMAGE_SIZE_MISMATCH] >= 1
    assert any('missing.png' in m and IMAGE_MISSING in m for m in log_messages)


def test_unreadable_image_in_test_mode_names_the_file(bad_tree):
    with pytest.raises(RuntimeError, match=r'image x.png \(images without a readable'):
        _build(bad_tree, test_mode=True)  # an image entry without a size
    with open(osp.join(bad_tree, 'bad.json')) as f:
        text = f.read().replace('{"id": 9, "file_name": "x.png"}, ', '')
    with open(osp.join(bad_tree, 'bad.json'), 'w') as f:
        f.write(text)
    dataset = _build(bad_tree, test_mode=True)
    assert dataset[0]['data_samples'].img_path.endswith('good.png')
    with pytest.raises(RuntimeError, match=r'missing\.png .*image files missing.*bad\.json'):
        dataset[1]


@pytest.mark.parametrize('field, value, message', [
    ('data_root', 'nowhere', "data_root 'nowhere' does not exist"),
    ('ann_file', 'nothing.json', 'nothing.json.* does not exist'),
    ('data_prefix', dict(img='no_images/'), 'image folder .*no_images.* does not exist'),
])
def test_missing_paths_fail_at_start(bad_tree, field, value, message):
    cfg = dict(type='CocoDataset', data_root=bad_tree, ann_file='bad.json',
               data_prefix=dict(img='img/'), metainfo=dict(classes=('thing', )))
    cfg[field] = value
    with pytest.raises(FileNotFoundError, match=message) as info:
        DATASETS.build(cfg)
    assert 'COCO-format' in str(info.value)  # how to get the data


def test_class_list_mismatch_names_both_lists(tmp_path):
    ann_file = write_coco(tmp_path / 'a.json', [(1, 'a.png', 32, 32)], [],
                           [(24, 'person'), (26, 'car')])
    with pytest.raises(ValueError) as info:
        CocoDataset(ann_file=ann_file, metainfo=dict(classes=('person', 'rider', 'car')))
    assert ("classes in ann_file don't match metainfo.classes: missing ['rider'] "
            "(available: ['person', 'car'])") in str(info.value)


def test_one_class_string_trap(tmp_path):
    ann_file = write_coco(tmp_path / 'a.json', [(1, 'a.png', 32, 32)], [], [(1, 'rider')])
    config = tmp_path / 'cfg.py'
    config.write_text("classes = ('rider')\n")  # what people write for a 1-tuple
    classes = Config.fromfile(str(config)).classes
    with pytest.raises(ValueError, match=r"trailing comma: classes=\('rider',\)"):
        CocoDataset(ann_file=ann_file, metainfo=dict(classes=classes))
    assert CocoDataset(ann_file=ann_file,
                       metainfo=dict(classes=('rider', ))).metainfo['classes'] == ('rider', )


@pytest.mark.parametrize('classes, error', [
    (('a', 'a'), "duplicate names \\['a'\\]"), ((), 'empty'), ((1, 2), 'tuple of class names')])
def test_other_bad_class_lists(tmp_path, classes, error):
    ann_file = write_coco(tmp_path / 'a.json', [(1, 'a.png', 32, 32)], [], [(1, 'a')])
    with pytest.raises((ValueError, TypeError), match=error):
        CocoDataset(ann_file=ann_file, metainfo=dict(classes=classes))


def test_duplicate_annotation_ids_and_non_coco_json(tmp_path):
    path = write_coco(tmp_path / 'a.json', [(1, 'a.png', 32, 32)],
                       [dict(image_id=1, category_id=1, bbox=[0, 0, 4, 4], id=3),
                        dict(image_id=1, category_id=1, bbox=[0, 0, 4, 4], id=3)], [(1, 'a')])
    with pytest.raises(ValueError, match='not unique'):
        CocoDataset(ann_file=path, metainfo=dict(classes=('a', )))
    other = tmp_path / 'list.json'
    other.write_text('[1, 2]')
    with pytest.raises(ValueError, match='not a COCO instances json'):
        CocoDataset(ann_file=str(other), metainfo=dict(classes=('a', )))
    assert osp.isfile(path)
