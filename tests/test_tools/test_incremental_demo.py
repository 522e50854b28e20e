"""tools/misc/incremental_demo.py (run_demo.py --incremental): data, runs and the table."""
import json
import os

import pytest

from tools.misc import incremental_demo as demo
from tools.misc import run_demo


def test_data_labels_only_the_new_classes_in_train_new(tmp_path):
    root = str(tmp_path / 'inc')
    demo.prepare_data(root, num_train=20, num_val=2, image_size=64, seed=0)
    full = json.loads((tmp_path / 'inc' / 'train.json').read_text())
    new = json.loads((tmp_path / 'inc' / 'train_new.json').read_text())
    assert [c['name'] for c in new['categories']] == list(demo.NEW_CLASSES)
    names = {c['id']: c['name'] for c in full['categories']}
    assert len(names) == 12 and new['images'] == full['images']
    kept = [a for a in full['annotations'] if names[a['category_id']] in demo.NEW_CLASSES]
    assert new['annotations'] == kept and 0 < len(kept) < len(full['annotations'])


def test_runs_differ_only_in_the_teacher_and_the_labels():
    runs = demo.incremental_runs(run_demo.Run, 'pre.pth', '/d', {}, 'pretrain')
    plain, inc, joint = (r.options for r in runs)
    ablations = demo.incremental_runs(run_demo.Run, 'pre.pth', '/d', {}, 'pretrain', True)
    assert [r.name for r in ablations] == ['inc_plain', 'inc_incremental', 'inc_no_pseudo',
                                           'inc_no_distill', 'inc_no_roi', 'inc_roi_l2',
                                           'inc_new_rois', 'inc_joint']
    for run, (key, value) in zip(ablations[2:7], (('pseudo_labels', False),
                                                  ('distill', False), ('distill_roi', False),
                                                  ('distill_roi_loss', 'l2'),
                                                  ('distill_roi_new_iou', None))):
        assert {k: v for k, v in run.options.items() if k not in inc} == \
            {f'finetune.incremental.{key}': value}
    assert plain['finetune.incremental.pseudo_labels'] is False
    assert plain['finetune.incremental.distill'] is False
    assert 'finetune.incremental.pseudo_labels' not in inc
    assert joint['finetune.incremental'] is False
    assert joint['train_dataloader.dataset.ann_file'] == 'train.json'
    assert all(o['load_from'] == 'pre.pth' for o in (plain, inc, joint))


def test_table_shares_of_pretrained_and_plain():
    def m(old, new):
        h = 2 * old * new / (old + new)
        return {f'{k}_{g}_mAP': v for k in ('bbox', 'segm')
                for g, v in (('old', old), ('new', new), ('hmean', h))}
    pretrained = {'bbox_old_mAP': 0.8, 'segm_old_mAP': 0.8}
    table, numbers = demo.results_table(
        pretrained, {'inc_plain': m(0.2, 0.5), 'inc_incremental': m(0.76, 0.48)},
        {'inc_plain': 'plain', 'inc_incremental': 'incremental'})
    assert '| incremental | bbox | 0.760 | 95% | 0.480 | 96% | 0.588 |' in table
    assert '| plain | bbox | 0.200 | 25% | 0.500 | 100% |' in table
    assert numbers['pretrained'] == pretrained


def test_recipe_config_counts_old_and_new_classes():
    from mmengine.config import Config

    from mmft.finetune.incremental import apply_incremental
    cfg = Config.fromfile(demo.CONFIG)
    cfg.finetune.source_classes = demo.UNION[:10]  # what the pretrained checkpoint carries
    assert apply_incremental(cfg) == demo.UNION
    assert cfg.model.roi_head.bbox_head.num_classes == 12
    assert cfg.model.roi_head.mask_head.num_classes == 12
    assert tuple(cfg.train_dataloader.dataset.metainfo.classes) == demo.NEW_CLASSES
    assert tuple(cfg.val_evaluator.old_classes) == demo.UNION[:10]


@pytest.mark.slow
def test_end_to_end_table_has_every_run_and_numbers_in_range(tmp_path):
    argv = ['--incremental', '--work-dir', str(tmp_path / 'work'), '--data-root',
            str(tmp_path / 'data'), '--num-train', '8', '--num-val', '4',
            '--incremental-num-train', '8', '--incremental-num-val', '4', '--image-size', '64',
            '--pretrain-iters', '2', '--finetune-iters', '1', '--batch-size', '2']
    numbers = run_demo.main(argv)
    with open(tmp_path / 'work' / 'incremental_results.json') as f:
        results = json.load(f)
    runs = ['inc_plain', 'inc_incremental', 'inc_joint']
    assert list(results['runs']) == runs and set(results['seconds']) == {'inc_pretrain', *runs}
    assert results['numbers'] == json.loads(json.dumps(numbers))
    assert results['wall_seconds'] > 0 and results['cpu_seconds'] > 0
    for name in runs:
        for m in ('bbox', 'segm'):
            for group in ('old', 'new', 'hmean'):
                assert 0 <= numbers[name][f'{m}_{group}_mAP'] <= 1
    assert 0 <= numbers['pretrained']['bbox_old_mAP'] <= 1
    table = (tmp_path / 'work' / 'incremental_results.md').read_text()
    rows = [line for line in table.splitlines() if line.startswith('| ')][1:]
    labels = ['pretrained (10 classes)'] + list(results['runs'].values())
    # one bbox and one segm row per run, in order
    assert [r.split(' | ')[0][2:] for r in rows] == [label for label in labels
                                                      for _ in range(2)]
    assert 'Wall time' in table and 'CPU time' in table and 'load average' in table
    # the pretraining: 2 data-parallel processes of half the batch each, where 2 cores exist
    log = (tmp_path / 'work' / 'inc_pretrain' / 'train.log').read_text()
    parallel = (os.cpu_count() or 1) >= 2
    assert ('Distributed training: True' in log) == parallel
    from mmengine.config import Config
    dumped = Config.fromfile(str(tmp_path / 'work' / 'inc_pretrain' / 'shapes_pretrain.py'))
    assert dumped.train_dataloader.batch_size == (1 if parallel else 2)
