"""tools/misc/run_demo.py: the embedded demo, shortened to a few iterations on 64 px images."""
import json
import os.path as osp

import cv2
import pytest

from tools.misc import run_demo

TINY = ['--num-train', '8', '--target-num-train', '8', '--num-val', '4', '--image-size', '64',
        '--pretrain-iters', '2', '--finetune-iters', '4', '--val-interval', '2',
        '--batch-size', '2', '--num-vis', '2']
RUNS = ('scratch', 'plain', 'transfer')


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo')
    argv = ['--work-dir', str(root / 'work'), '--data-root', str(root / 'data')] + TINY
    return dict(argv=argv, work=str(root / 'work'), results=run_demo.main(argv))


@pytest.mark.slow
def test_end_to_end_writes_tables_json_and_pngs(demo):
    work = demo['work']
    with open(osp.join(work, 'results.json')) as f:
        results = json.load(f)
    assert results == json.loads(json.dumps(demo['results']))
    assert set(results['runs']) == {'pretrain', *RUNS}
    for name in RUNS:
        run = results['runs'][name]
        # same budget: every run evaluated at the same iterations
        assert sorted(run['curve'], key=int) == ['2', '4']
        assert {'bbox_mAP', 'segm_mAP', 'bbox_pentagon_precision'} <= set(run['curve']['4'])
        assert osp.isfile(osp.join(work, name, 'iter_4.pth'))
    assert results['runs']['pretrain']['cached'] is False
    assert 'load_from=None' in results['runs']['scratch']['options']
    assert 'finetune.class_transfer=False' in results['runs']['plain']['options']
    assert results['class_origin'] == {'circle': 'circle (name)', 'triangle': 'triangle (name)',
                                       'star': 'star (name)', 'box': 'square (mapping)',
                                       'pentagon': 'new (initialised)'}

    with open(osp.join(work, 'results.md')) as f:
        markdown = f.read()
    assert '| 4 |' in markdown and '| pentagon | new (initialised) |' in markdown

    curves = cv2.imread(results['curves_png'])
    assert curves is not None and curves.shape == (600, 800, 3)  # analyze_logs: 8x3 in per key
    assert len(results['predictions']) == 2
    for png in results['predictions']:
        drawn = cv2.imread(png)
        # ground truth | predictions, each 4 times the 64 px image
        assert drawn is not None and drawn.shape == (256, 512, 3)


@pytest.mark.slow
def test_rerun_uses_the_cached_pretraining_unless_forced_or_changed(demo, monkeypatch, capsys):
    trained = []
    # the first call's run folders stay; the stub only records which runs would train
    monkeypatch.setattr(run_demo, 'train', lambda run, *args: trained.append(run.name) or 0.0)
    results = run_demo.main(demo['argv'] + ['--num-vis', '0'])
    assert trained == list(RUNS)
    assert results['runs']['pretrain']['cached'] is True
    out = capsys.readouterr().out
    assert 'cached' in out and '--force' in out

    for extra in (['--force'], ['--batch-size', '1']):  # forced; other pretraining options
        trained.clear()
        run_demo.main(demo['argv'] + ['--num-vis', '0'] + extra)
        assert trained == ['pretrain', *RUNS]


def test_schedule_options_shorten_the_recipe_keeping_its_shape():
    options = run_demo.schedule_options(run_demo.FINETUNE_CONFIG, max_iters=60)
    assert options['train_cfg.max_iters'] == 60
    assert options['default_hooks.checkpoint.interval'] == 60
    assert options['param_scheduler.1.milestones'] == [45]  # 0.75 of the schedule
    assert 'train_cfg.val_interval' not in options  # the recipe's own intervals still fit
    # a schedule shorter than the first evaluation evaluates at its end
    options = run_demo.schedule_options(run_demo.FINETUNE_CONFIG, max_iters=20)
    assert options['train_cfg.val_interval'] == 20
    assert options['train_cfg.dynamic_intervals'] is None
    options = run_demo.schedule_options(run_demo.FINETUNE_CONFIG, val_interval=7)
    assert options == {'train_cfg.val_interval': 7, 'train_cfg.dynamic_intervals': None}
    assert run_demo.cli_options({'load_from': None, 'a.b': [1, 2]}) == ['load_from=None',
                                                                         'a.b=[1, 2]']


def test_progress_lines_from_the_training_log():
    train = ('11/25 10:16:19 - mmengine - INFO - Iter(train) [ 75/600]  lr: 2.0000e-02  '
             'eta: 0:05:30  time: 0.5517  data_time: 0.0090  loss: 2.0905  loss_rpn_cls: 0.1563')
    val = ('11/25 10:17:19 - mmengine - INFO - Iter(val) [13/13]    coco/bbox_mAP: 0.0792  '
           'coco/bbox_mAP_50: 0.1699  coco/segm_mAP: 0.0588  coco/segm_mAP_50: 0.1438')
    assert run_demo.progress_line(train) == 'iter 75/600  loss 2.0905  eta 0:05:30'
    assert run_demo.progress_line(val) == 'val: bbox mAP 0.0792  segm mAP 0.0588'
    box_only = ('11/25 10:17:19 - mmengine - INFO - Iter(val) [13/13]    coco/bbox_mAP: 0.4120  '
                'coco/bbox_mAP_50: 0.6990  data_time: 0.0120')
    assert run_demo.progress_line(box_only) == 'val: bbox mAP 0.4120'
    assert run_demo.progress_line('11/25 10:17:19 - mmengine - INFO - Saving checkpoint') is None


@pytest.mark.parametrize('name', sorted(run_demo.DEMO_MODELS))
def test_recipe_loads_the_checkpoint_the_demo_caches(name):
    from mmengine.config import Config
    model = run_demo.DEMO_MODELS[name]
    recipe = Config.fromfile(model.finetune_config)
    cached = run_demo.final_checkpoint(osp.join(model.work_dir, 'pretrain'),
                                       model.pretrain_config)
    assert recipe.load_from == cached  # `python tools/train.py <the fine-tuning config>`
    assert recipe.finetune.class_mapping == {'box': 'square'}
    # the same comparison for every model: same target classes and evaluation points
    assert recipe.classes == Config.fromfile(run_demo.FINETUNE_CONFIG).classes
    assert run_demo.parse_args(['--model', name]).work_dir == model.work_dir


def test_model_choice_plans_its_own_configs():
    args = run_demo.parse_args(['--model', 'rtmdet-tiny', '--data-root', '/d'])
    runs = run_demo.plan_runs(args)
    rtmdet = run_demo.DEMO_MODELS['rtmdet-tiny']
    assert [r.config for r in runs] == [rtmdet.pretrain_config] + [rtmdet.finetune_config] * 3
    assert runs[-1].options['load_from'] == \
        osp.join('work_dirs/demo_rtmdet-tiny', 'pretrain', 'iter_600.pth')
    with pytest.raises(SystemExit):
        run_demo.parse_args(['--model', 'rtmdet-tiny', '--incremental'])


@pytest.mark.slow
def test_rtmdet_tiny_end_to_end_reports_box_metrics_only(tmp_path):
    argv = ['--model', 'rtmdet-tiny', '--work-dir', str(tmp_path / 'work'), '--data-root',
            str(tmp_path / 'data'), *TINY[:-2], '--finetune-iters', '2', '--num-vis', '1']
    results = run_demo.main(argv)
    assert results['model'] == 'rtmdet-tiny'
    last = results['runs']['transfer']['curve']['2']
    assert 'bbox_mAP' in last and 'segm_mAP' not in last
    with open(osp.join(tmp_path, 'work', 'results.md')) as f:
        markdown = f.read()
    assert 'class-aware transfer (recipe): bbox |' in markdown
    assert '| pentagon | new (initialised) |' in markdown
    assert len(results['predictions']) == 1 and osp.isfile(results['predictions'][0])
