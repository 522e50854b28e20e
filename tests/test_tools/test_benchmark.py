"""benchmark.py runs end to end at a tiny size and writes the report it documents.

No timing is asserted (CI machines differ); only that every figure is there and sane.
"""
import json
import math

import pytest

from tools.analysis_tools import benchmark

PAIRS = ('train_step', 'inference', 'mask_paste', 'data_pipeline')


@pytest.mark.slow
def test_tiny_run_writes_every_figure(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    benchmark.main(['--size', '64', '--batch', '2', '--objects', '2', '--iters', '1',
                    '--warmup', '0', '--threads', '1', '--data-images', '2',
                    '--out', str(out)])
    assert 'train step (batch)' in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert set(report) == {'environment', 'settings', 'results', 'samples_s'}
    env, results = report['environment'], report['results']
    assert env['size'] == [64, 64] and env['threads'] == 1 and env['batch'] == 2
    for name in PAIRS:
        pair = results[name]
        assert pair['mmft'] > 0 and pair['torchvision'] > 0
        assert math.isclose(pair['ratio'], pair['mmft'] / pair['torchvision'])
    for name in ('train_step', 'inference'):
        assert results[name]['mmft_over_floor'] > 1  # the floor is part of the detector
    assert set(results['floor']) == {'mmft', 'torchvision'}
    for phase in ('train_step', 'inference'):
        for key in ('peak', 'step'):
            assert results['memory_mb'][phase][key]['mmft'] > 0
    frozen = results['frozen_stages']
    assert frozen['speedup'] > 0
    # every stage frozen: the backward never enters the backbone; frozen_stages=1: C2 is
    # out of the graph, the later stages train
    assert frozen['frozen_stages=4 autograd'] == {
        'input_requires_grad': False, 'stage_outputs_require_grad': [False] * 4,
        'backbone_params_with_grad': 0}
    one = frozen['frozen_stages=1 autograd']
    assert one['stage_outputs_require_grad'] == [False, True, True, True]
    assert one['backbone_params_with_grad'] > 0
    assert report['settings']['mmft']['overrides']['model.backbone.frozen_stages'] == 1


def test_size_argument():
    assert benchmark.parse_args(['--size', '800x1333']).size == (800, 1333)
    assert benchmark.parse_args([]).size == (512, 512)


def test_model_picks_the_comparison_its_options_and_defaults():
    args = benchmark.parse_args(['--model', 'retinanet', '--size', '512', '800x1333'])
    assert args.families == ['retinanet'] and args.size == [(512, 512), (800, 1333)]
    assert (args.iters, args.warmup, args.batch) == (3, 1, 2)
    args = benchmark.parse_args(['--model', 'ssd300', '--iters', '2'])
    assert args.models == ['ssd300'] and args.batch == 8 and args.iters == 2
    assert benchmark.parse_args(['--model', 'yolov3-mobilenetv2']).models == ['yolov3_mobilenetv2']
    assert benchmark.parse_args(['--model', 'rtmdet-tiny']).size == 320
    # a name's own defaults win over its module's
    args = benchmark.parse_args(['--model', 'pipeline'])
    assert (args.size, args.iters, args.workers) == (640, 3, 2)
    assert benchmark.parse_args(['--model', 'backbones', '--backbones', 'swin-t']).backbones == [
        'r50', 'swin-t']
    # every name of the table resolves to a module that serves it
    for name in benchmark.BENCHMARKS:
        assert benchmark.parse_args(['--model', name]).model == name


@pytest.mark.parametrize('argv, message', [
    (['--model', 'yolox'], 'invalid choice'),
    (['--model', 'retinanet', '--iters', '0'], '--iters'),
    (['--model', 'ssd300', '--infer-batch', '2'], 'unrecognized'),  # a Mask R-CNN option
])
def test_bad_arguments_are_named(argv, message, capsys):
    with pytest.raises(SystemExit):
        benchmark.parse_args(argv)
    assert message in capsys.readouterr().err


@pytest.mark.parametrize('name', ['rtmdet-tiny', 'yolox-s'])
def test_real_time_models_through_the_entry_point(tmp_path, capsys, name):
    out = tmp_path / 'bench.json'
    extra = ['--l1'] if name == 'yolox-s' else []
    report = benchmark.main(['--model', name, '--size', '64', '--batch', '1', '--iters', '1',
                             '--warmup', '0', '--images', '2', '--threads', '1',
                             '--out', str(out), *extra])
    assert 'train_images_per_s' in capsys.readouterr().out
    assert json.loads(out.read_text()) == report
    assert report['environment']['model'] == name
    assert set(report['results']) == {'train_images_per_s', 'infer_images_per_s',
                                      'pipeline_images_per_s'}
    assert all(v > 0 for v in report['results'].values())
