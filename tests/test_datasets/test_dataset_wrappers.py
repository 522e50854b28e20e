"""RepeatDataset, ConcatDataset, ClassBalancedDataset: resolved from mmft's DATASETS, wrapping
mmft datasets given as configs."""
import mmengine.dataset as mmengine_dataset
import pytest
from mmengine import DefaultScope

from mmft.datasets import ClassBalancedDataset, ConcatDataset, RepeatDataset
from mmft.registry import DATASETS

from tests.test_datasets.dataset_trees import write_coco


@pytest.fixture
def coco_cfg(tmp_path):
    ann = dict(image_id=1, category_id=1, bbox=[0, 0, 8, 8])
    ann_file = write_coco(
        tmp_path / 'a.json', [(1, 'a.png', 32, 32), (2, 'b.png', 32, 32), (3, 'c.png', 32, 32)],
        [ann, dict(ann, category_id=2), dict(ann, image_id=2), dict(ann, image_id=3)],
        [(1, 'common'), (2, 'rare')])
    return dict(type='CocoDataset', ann_file=ann_file, metainfo=dict(classes=('common', 'rare')))


@pytest.mark.parametrize('name, cls', [('RepeatDataset', RepeatDataset),
                                       ('ConcatDataset', ConcatDataset),
                                       ('ClassBalancedDataset', ClassBalancedDataset)])
def test_types_resolve_to_mmft_subclasses_of_mmengine(name, cls):
    assert DATASETS.get(name) is cls
    assert issubclass(cls, getattr(mmengine_dataset, name))


def test_repeat_and_concat(coco_cfg):
    repeat = DATASETS.build(dict(type='RepeatDataset', times=3, dataset=coco_cfg))
    assert len(repeat) == 9
    assert repeat.get_data_info(4)['img_id'] == 2
    assert repeat.metainfo['classes'] == ('common', 'rare')
    concat = DATASETS.build(dict(type='ConcatDataset', datasets=[coco_cfg, coco_cfg]))
    assert len(concat) == 6 and concat.get_data_info(3)['img_id'] == 1


def test_class_balanced_repeats_images_with_rare_classes(coco_cfg):
    balanced = DATASETS.build(dict(type='ClassBalancedDataset', oversample_thr=0.5,
                                   dataset=coco_cfg))
    # 'rare' is in 1 of 3 images: repeat factor sqrt(0.5 / (1/3)) -> image 1 twice
    img_ids = [balanced.get_data_info(i)['img_id'] for i in range(len(balanced))]
    assert sorted(img_ids) == [1, 1, 2, 3]


def test_wrapped_configs_build_in_mmft_scope_whatever_the_default(coco_cfg):
    # MMEngine's own wrapper would look 'CocoDataset' up in the current default scope
    cfg = dict(coco_cfg, pipeline=[dict(type='LoadAnnotations')])
    with DefaultScope.overwrite_default_scope('mmengine'):
        repeat = RepeatDataset(dataset=cfg, times=2)
        assert repeat[0]['gt_bboxes'].shape == (2, 4)
