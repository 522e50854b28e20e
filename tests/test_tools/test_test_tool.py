"""tools/test.py evaluates a checkpoint as stored: exact load, clear refusals, MMDetection dumps."""
import pickle

import pytest

from mmft.engine import FinetuneRunner
from tests.tiny_runs import SOURCE_CLASSES, _dataset, make_shapes_data, tiny_config
from tools import test as test_tool


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp('test_tool')
    shapes = make_shapes_data(str(root / 'data'), num_train=2, num_val=2)
    cfg = tiny_config(shapes['source'], str(root / 'train'), SOURCE_CLASSES, max_iters=1)
    FinetuneRunner.from_cfg(cfg).train()
    return dict(root=root, data=shapes['source'], ckpt=str(root / 'train' / 'iter_1.pth'))


def _test_config(trained, classes, name):
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                      'img_shape', 'scale_factor'))]
    cfg = tiny_config(trained['data'], str(trained['root'] / name), classes)
    cfg.test_dataloader = dict(batch_size=1, num_workers=0,
                               sampler=dict(type='DefaultSampler', shuffle=False),
                               dataset=_dataset(trained['data'], 'val', classes, pipeline))
    cfg.test_evaluator = dict(type='CocoMetric', metric=['bbox', 'segm'],
                              ann_file=f"{trained['data']}/val.json")
    cfg.test_cfg = dict(type='TestLoop')
    path = str(trained['root'] / f'{name}.py')
    cfg.dump(path)
    return path


def test_evaluates_and_dumps_mmdetection_results(trained):
    config = _test_config(trained, SOURCE_CLASSES, 'same')
    out = trained['root'] / 'preds.pkl'
    test_tool.main([config, trained['ckpt'], '--out', str(out)])
    with open(out, 'rb') as f:
        results = pickle.load(f)
    assert len(results) == 2 and isinstance(results[0], dict)
    assert 'gt_instances' not in results[0] and 'ignored_instances' not in results[0]
    pred = results[0]['pred_instances']
    assert set(pred) >= {'bboxes', 'scores', 'labels', 'masks'}
    assert all(set(rle) == {'size', 'counts'} for rle in pred['masks'])


def test_a_checkpoint_of_other_classes_is_refused(trained):
    """Same class count, other names: the class rows would be read as the wrong classes."""
    other = tuple(f'thing{i}' for i in range(len(SOURCE_CLASSES)))
    config = _test_config(trained, other, 'other_names')
    with pytest.raises(ValueError, match=r'was trained on classes .* but the config\'s dataset '
                                         r'has \[\'thing0\''):
        test_tool.main([config, trained['ckpt']])


def test_a_checkpoint_of_another_class_count_is_refused(trained):
    config = _test_config(trained, ('a', 'b', 'c'), 'three')
    with pytest.raises(ValueError, match='was trained on classes'):
        test_tool.main([config, trained['ckpt']])
    # without class names in the file, the shapes still have to fit
    import torch
    stripped = str(trained['root'] / 'no_meta.pth')
    torch.save({'state_dict': torch.load(trained['ckpt'])['state_dict']}, stripped)
    with pytest.raises(ValueError, match='shape mismatch.*roi_head.bbox_head.fc_cls.weight'):
        test_tool.main([config, stripped])
