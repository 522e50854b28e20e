"""DetVisualizationHook: one drawing per test image in test_out_dir, every interval-th in val."""
import os
import os.path as osp
import uuid
from types import SimpleNamespace

import cv2
import numpy as np
import torch
from mmengine.dataset import DefaultSampler
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.structures import InstanceData
from torch.utils.data import Dataset

from mmft.engine.hooks import DetVisualizationHook
from mmft.structures import DetDataSample
from mmft.visualization import DetLocalVisualizer

H, W = 48, 64


def _images(folder, n: int):
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(n):
        paths.append(osp.join(folder, f'img_{i}.png'))
        cv2.imwrite(paths[-1], np.full((H, W, 3), 90 + i, np.uint8))
    return paths


def _prediction(img_path: str) -> DetDataSample:
    sample = DetDataSample(metainfo=dict(img_path=img_path, ori_shape=(H, W)))
    sample.pred_instances = InstanceData(bboxes=torch.tensor([[5., 5., 30., 30.]]),
                                         labels=torch.tensor([0]), scores=torch.tensor([0.9]))
    return sample


def _fresh_visualizer(**kwargs) -> DetLocalVisualizer:
    # the hook draws with the newest visualizer, as under a Runner
    return DetLocalVisualizer.get_instance(f'hook-{uuid.uuid4().hex}', **kwargs)


def test_one_png_per_test_image_in_test_out_dir(tmp_path):
    paths = _images(tmp_path / 'data', 3)
    _fresh_visualizer()
    hook = DetVisualizationHook(draw=True, test_out_dir='show')
    runner = SimpleNamespace(work_dir=str(tmp_path / 'work'), timestamp='20240101_000000')
    hook.before_test(runner)
    hook.after_test_iter(runner, 0, {}, [_prediction(p) for p in paths[:2]])
    hook.after_test_iter(runner, 1, {}, [_prediction(paths[2])])
    out_dir = tmp_path / 'work' / '20240101_000000' / 'show'
    assert sorted(os.listdir(out_dir)) == ['img_0.png', 'img_1.png', 'img_2.png']
    for i, name in enumerate(sorted(os.listdir(out_dir))):
        drawn = cv2.imread(str(out_dir / name))
        assert drawn.shape == (H, W, 3)
        changed = np.abs(drawn.astype(int) - (90 + i)).sum(-1) > 0
        assert changed[5:31, 4:7].any() and not changed[35:, 35:].any()


def test_draw_false_writes_nothing(tmp_path):
    paths = _images(tmp_path / 'data', 1)
    _fresh_visualizer()
    hook = DetVisualizationHook(draw=False, test_out_dir=str(tmp_path / 'show'))
    runner = SimpleNamespace(work_dir=str(tmp_path), timestamp='t', iter=0)
    hook.before_test(runner)
    hook.after_test_iter(runner, 0, {}, [_prediction(paths[0])])
    hook.after_val_iter(runner, 0, {}, [_prediction(paths[0])])
    assert not osp.exists(tmp_path / 'show')


def test_val_draws_every_interval_into_the_vis_backend(tmp_path):
    paths = _images(tmp_path / 'data', 1)
    _fresh_visualizer(vis_backends=[dict(type='LocalVisBackend')], save_dir=str(tmp_path))
    hook = DetVisualizationHook(draw=True, interval=2)
    runner = SimpleNamespace(iter=10)
    for batch_idx in range(4):
        hook.after_val_iter(runner, batch_idx, {}, [_prediction(paths[0])])
    assert sorted(os.listdir(tmp_path / 'vis_data' / 'vis_image')) == [
        'val_img_10.png', 'val_img_12.png']


class _ImagePaths(Dataset):
    metainfo = dict(classes=('thing', ))

    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return dict(img_path=self.paths[i])


class _FixedDetector(BaseModel):
    """Predicts one box per image; stands in for a detector under the Runner."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Linear(1, 1)

    def forward(self, img_path, mode='predict'):
        return [_prediction(p) for p in img_path]


class _NoMetric(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.append(0)

    def compute_metrics(self, results):
        return {}


def test_runner_test_with_show_dir_as_tools_test_sets_it(tmp_path):
    dataset = _ImagePaths(_images(tmp_path / 'data', 3))
    runner = Runner(
        model=_FixedDetector(), work_dir=str(tmp_path / 'work'),
        test_dataloader=dict(dataset=dataset, batch_size=2, num_workers=0,
                             sampler=DefaultSampler(dataset, shuffle=False)),
        test_cfg=dict(), test_evaluator=[_NoMetric()],
        default_hooks=dict(visualization=dict(type='DetVisualizationHook', draw=True,
                                              test_out_dir='show')),
        visualizer=dict(type='DetLocalVisualizer', name=f'runner-{uuid.uuid4().hex}'),
        default_scope='mmft')
    runner.test()
    out_dir = osp.join(runner.work_dir, runner.timestamp, 'show')
    assert sorted(os.listdir(out_dir)) == ['img_0.png', 'img_1.png', 'img_2.png']
    assert runner.visualizer.dataset_meta['classes'] == ('thing', )
