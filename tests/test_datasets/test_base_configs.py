"""configs/_base_/datasets: MMDetection 3.x's structure; every type resolves in mmft's
registries; the pipelines run on tiny trees through a real dataloader."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from mmft.datasets.synthetic import SOURCE_CLASSES, generate_shapes_dataset
from mmft.registry import DATA_SAMPLERS, DATASETS, TRANSFORMS

from tests.test_datasets.dataset_trees import make_cityscapes, make_voc, voc_xml

CONFIGS = {
    'coco_detection': ('CocoDataset', 'CocoMetric'),
    'coco_instance': ('CocoDataset', 'CocoMetric'),
    'cityscapes_detection': ('CityscapesDataset', 'CocoMetric'),
    'cityscapes_instance': ('CityscapesDataset', 'CocoMetric'),
    'voc0712': ('VOCDataset', 'VOCMetric'),
    'lvis_v1_instance': ('LVISV1Dataset', 'LVISMetric'),
    'wider_face': ('WIDERFaceDataset', 'VOCMetric'),
    'objects365v2_detection': ('Objects365V2Dataset', 'CocoMetric'),
    'deepfashion': ('DeepFashionDataset', 'CocoMetric'),
    'openimages_detection': ('OpenImagesDataset', 'OpenImagesMetric'),
}


def _load(repo_root, name):
    return Config.fromfile(osp.join(repo_root, 'configs', '_base_', 'datasets', f'{name}.py'))


def _inner(dataset_cfg):
    while 'dataset' in dataset_cfg or 'datasets' in dataset_cfg:
        dataset_cfg = dataset_cfg.get('dataset') or dataset_cfg['datasets'][0]
    return dataset_cfg


@pytest.mark.parametrize('name', CONFIGS)
def test_structure_and_types_resolve(repo_root, name):
    cfg = _load(repo_root, name)
    dataset_type, metric_type = CONFIGS[name]
    assert cfg.dataset_type == dataset_type and cfg.backend_args is None
    train = cfg.train_dataloader
    assert train.sampler == dict(type='DefaultSampler', shuffle=True)
    assert DATA_SAMPLERS.get(train.batch_sampler.type) is not None
    assert DATA_SAMPLERS.get(train.sampler.type) is not None
    for loader in (train, cfg.val_dataloader, cfg.test_dataloader):
        assert DATASETS.get(loader.dataset.type) is not None
        assert _inner(loader.dataset).type == dataset_type
        for step in _inner(loader.dataset).pipeline:
            assert callable(TRANSFORMS.build(step))
    assert cfg.val_dataloader.dataset.test_mode and cfg.val_dataloader.sampler.shuffle is False
    evaluators = cfg.val_evaluator if isinstance(cfg.val_evaluator, list) else [cfg.val_evaluator]
    assert evaluators[0].type == metric_type


def test_cityscapes_values_follow_mmdetection(repo_root):
    cfg = _load(repo_root, 'cityscapes_instance')
    train = cfg.train_dataloader.dataset
    assert train.type == 'RepeatDataset' and train.times == 8
    assert cfg.data_root == 'data/cityscapes/'
    assert train.dataset.ann_file == 'annotations/instancesonly_filtered_gtFine_train.json'
    assert train.dataset.data_prefix == dict(img='leftImg8bit/train/')
    resize = train.dataset.pipeline[2]
    assert resize.type == 'RandomResize' and resize.scale == [(2048, 800), (2048, 1024)]
    assert cfg.test_pipeline[1].scale == (2048, 1024)
    assert [e.type for e in cfg.val_evaluator] == ['CocoMetric', 'CityScapesMetric']


def _batches(loader_cfg, **dataset_overrides):
    loader_cfg = loader_cfg.copy()
    loader_cfg.update(num_workers=0, persistent_workers=False, batch_size=2)
    _inner(loader_cfg.dataset).update(dataset_overrides)
    return list(Runner.build_dataloader(loader_cfg, seed=0))


def test_coco_instance_pipeline_through_a_dataloader(repo_root, tmp_path):
    generate_shapes_dataset(str(tmp_path), num_images=3, image_size=64, progress=False)
    cfg = _load(repo_root, 'coco_instance')
    batches = _batches(cfg.train_dataloader, data_root=str(tmp_path), ann_file='train.json',
                       data_prefix=dict(img='train/'), metainfo=dict(classes=SOURCE_CLASSES))
    samples = [s for b in batches for s in b['data_samples']]
    assert len(samples) == 3
    for inputs, sample in zip([i for b in batches for i in b['inputs']], samples):
        assert inputs.shape == (3, 800, 800)  # 64 px scaled up to the 800 short edge
        assert sample.scale_factor == (12.5, 12.5) and sample.ori_shape == (64, 64)
        gt = sample.gt_instances
        assert gt.masks.masks.shape[1:] == (800, 800)
        assert (gt.masks.get_bboxes() - gt.bboxes).abs().max() <= 13  # one source pixel


def test_cityscapes_train_loader_on_converter_output(repo_root, tmp_path):
    root = make_cityscapes(tmp_path / 'cityscapes')
    cfg = _load(repo_root, 'cityscapes_instance')
    cfg.train_dataloader.dataset.dataset.data_root = root
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(dataset) == 8  # the crowd-only image is filtered; x8 repeat
    batches = _batches(cfg.train_dataloader)
    assert sum(len(b['inputs']) for b in batches) == 8
    for inputs in (i for b in batches for i in b['inputs']):
        assert inputs.shape[1:] in [(h, 2 * h) for h in range(800, 1025)]


def test_voc0712_concatenates_two_years(repo_root, tmp_path):
    for year in (2007, 2012):
        make_voc(tmp_path, year, {f'{year}_1': voc_xml([('dog', 0, (1, 1, 40, 30))]),
                                  f'{year}_2': voc_xml([('cat', 1, (1, 1, 40, 30))])})
    cfg = _load(repo_root, 'voc0712')
    concat = cfg.train_dataloader.dataset.dataset
    for dataset in concat.datasets:
        dataset.data_root = str(tmp_path)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(dataset) == 3 * 4
    assert dataset.metainfo['classes'][:2] == ('aeroplane', 'bicycle')
    years = {dataset.dataset.datasets[i].metainfo['dataset_type'] for i in (0, 1)}
    assert years == {'VOC2007', 'VOC2012'}
