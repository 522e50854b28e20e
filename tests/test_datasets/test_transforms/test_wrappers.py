"""RandomChoice, RandomApply, Compose and TestTimeAug: which transforms run, how often, and
what TestTimeAug hands to the dataloader."""
import numpy as np
import pytest
from mmengine.dataset import pseudo_collate

from mmft.registry import TRANSFORMS

from tests.test_datasets.test_transforms.transform_samples import (H, W, assert_aligned,
                                                                   make_results)


def build(type, **kwargs):
    return TRANSFORMS.build(dict(type=type, **kwargs))


def test_random_choice_runs_one_alternative_with_given_probabilities(sample):
    choice = build('RandomChoice', transforms=[
        [dict(type='Resize', scale=(32, 24))],
        [dict(type='RandomFlip', prob=1.0), dict(type='Resize', scale=(128, 96))]],
        prob=[0.25, 0.75])
    np.random.seed(0)
    counts = {(24, 32): 0, (96, 128): 0}
    for _ in range(400):
        out = choice(make_results('polygon'))
        counts[out['img_shape']] += 1
        assert out.get('flip', False) == (out['img_shape'] == (96, 128))
        assert_aligned(out)
    assert 60 < counts[(24, 32)] < 140  # ~100 expected
    out = choice(sample)
    assert_aligned(out, atol=2.0)


def test_random_choice_errors():
    with pytest.raises(ValueError, match='one per alternative'):
        build('RandomChoice', transforms=[dict(type='RandomFlip', prob=1.)], prob=[0.5, 0.5])
    with pytest.raises(ValueError, match='sum to 1'):
        build('RandomChoice', transforms=[dict(type='RandomFlip', prob=1.)] * 2, prob=[.5, .6])
    with pytest.raises(ValueError, match='non-empty list'):
        build('RandomChoice', transforms=[])


def test_random_apply_probability_and_sequence():
    apply = build('RandomApply', transforms=[dict(type='RandomFlip', prob=1.0),
                                             dict(type='Resize', scale=(32, 24))], prob=0.3)
    np.random.seed(0)
    applied = 0
    for _ in range(500):
        out = apply(make_results('bitmap'))
        if out['img_shape'] == (24, 32):
            applied += 1
            assert out['flip'] is True
        else:
            assert 'flip' not in out and out['img_shape'] == (H, W)
        assert_aligned(out, atol=1.0)
    assert 110 < applied < 190  # ~150 expected
    never = build('RandomApply', transforms=dict(type='RandomFlip', prob=1.0), prob=0.0)
    assert 'flip' not in never(make_results())


def test_a_transform_returning_none_propagates():
    drop = dict(type='FilterAnnotations', min_gt_bbox_wh=(100, 100))
    assert build('RandomApply', transforms=[drop], prob=1.0)(make_results()) is None
    assert build('RandomChoice', transforms=[[drop]])(make_results()) is None


def test_test_time_aug_makes_every_combination_and_collates_views_first():
    tta = build('TestTimeAug', transforms=[
        [dict(type='Resize', scale=(32, 24)), dict(type='Resize', scale=(128, 96))],
        [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
        [dict(type='PackDetInputs', meta_keys=('img_shape', 'flip', 'scale_factor'))]])
    results = make_results('polygon')
    out = tta(results)
    assert set(out) == {'inputs', 'data_samples'} and len(out['inputs']) == 4
    metas = [(s.img_shape, s.flip) for s in out['data_samples']]
    assert metas == [((24, 32), True), ((24, 32), False), ((96, 128), True), ((96, 128), False)]
    assert results['img_shape'] == (H, W)  # each view works on its own copy
    assert [tuple(i.shape[1:]) for i in out['inputs']] == [(24, 32)] * 2 + [(96, 128)] * 2
    # a batch of two images: pseudo_collate puts the views first, as DetTTAModel expects
    batch = pseudo_collate([out, tta(make_results('bitmap'))])
    assert len(batch['inputs']) == 4 and len(batch['inputs'][0]) == 2


def test_test_time_aug_failed_views():
    stages = [[dict(type='FilterAnnotations', min_gt_bbox_wh=(100, 100)),
               dict(type='RandomFlip', prob=1.)]]
    with pytest.raises(RuntimeError, match='allow_failed=True'):
        build('TestTimeAug', transforms=stages)(make_results())
    out = build('TestTimeAug', transforms=stages, allow_failed=True)(make_results())
    assert out['flip'] == [True]
    with pytest.raises(ValueError, match='list of stages'):
        build('TestTimeAug', transforms=[dict(type='RandomFlip')])
