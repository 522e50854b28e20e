"""LVISV1Dataset: images found through coco_url, labels by name, federated fields kept."""
import pytest

from mmft.datasets import LVISV1Dataset
from mmft.datasets.class_names import LVIS_V1_CLASSES

from tests.test_datasets.lvis_tree import CLASSES, make_lvis


def test_lvis_v1_loads_from_coco_url(tmp_path):
    root, ann = make_lvis(tmp_path)
    ds = LVISV1Dataset(data_root=root, ann_file=ann, data_prefix=dict(img=''),
                       metainfo=dict(classes=CLASSES), pipeline=[
                           dict(type='LoadImageFromFile'),
                           dict(type='LoadAnnotations', with_bbox=True, with_mask=True)])
    assert len(ds) == 3
    info = ds.get_data_info(1)
    assert info['img_path'].endswith('val2017/b.jpg')
    assert info['not_exhaustive_category_ids'] == [12] and info['neg_category_ids'] == []
    # apple has id 12 but is class 0: labels by name, not by id
    assert [i['bbox_label'] for i in info['instances']] == [0, 2]
    assert info['instances'][0]['bbox'] == [10, 10, 40, 30]
    sample = ds[0]
    assert sample['img'].shape == (48, 64, 3) and len(sample['gt_masks']) == 2
    assert ds.get_cat_ids(2) == [2]


def test_lvis_v1_metainfo_and_errors(tmp_path):
    assert len(LVISV1Dataset.METAINFO['classes']) == 1203
    assert LVIS_V1_CLASSES[:3] == ('aerosol_can', 'air_conditioner', 'airplane')
    assert len(set(LVIS_V1_CLASSES)) == 1203
    root, ann = make_lvis(tmp_path)
    # the default 1203 classes are not in this 3-category json: the error says which
    with pytest.raises(ValueError, match=r"missing \['aerosol_can'"):
        LVISV1Dataset(data_root=root, ann_file=ann, data_prefix=dict(img=''))


def test_lvis_base_config_through_a_dataloader(repo_root, tmp_path):
    import os.path as osp

    from mmengine.config import Config
    from mmengine.runner import Runner
    root, ann = make_lvis(tmp_path)
    cfg = Config.fromfile(osp.join(repo_root, 'configs/_base_/datasets/lvis_v1_instance.py'))
    loader = cfg.train_dataloader.copy()
    loader.update(num_workers=0, persistent_workers=False, batch_size=2)
    loader.dataset.dataset.update(data_root=root, ann_file=ann, metainfo=dict(classes=CLASSES),
                                  filter_cfg=dict(filter_empty_gt=True, min_size=16))
    batches = list(Runner.build_dataloader(loader, seed=0))
    samples = [s for b in batches for s in b['data_samples']]
    # class-balanced repeats: 'cat' (2 of 3 images) and the rest are all above 1e-3 -> x1
    assert len(samples) == 3
    for sample in samples:
        assert min(sample.img_shape) in (640, 672, 704, 736, 768, 800)
        assert len(sample.gt_instances.masks) == len(sample.gt_instances.bboxes)
