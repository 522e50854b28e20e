"""benchmark.py --model one-stage runs end to end at a tiny size and reports every figure.

No timing is asserted (machines differ); only that each pair is there and consistent.
"""
import json
import math

from tools.analysis_tools import benchmark


def test_tiny_run_reports_both_families(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    benchmark.main(['--model', 'one-stage', '--size', '128', '--batch', '1', '--objects', '2',
                    '--iters', '1', '--warmup', '0', '--threads', '1', '--out', str(out)])
    assert 'train step (batch)' in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert set(report['results']) == {'retinanet 128x128', 'fcos 128x128'}
    for result in report['results'].values():
        for what in ('train_step', 'inference', 'train_step_channels_last',
                     'inference_channels_last'):
            pair = result[what]
            assert pair['mmft'] > 0 and pair['torchvision'] > 0
            assert math.isclose(pair['ratio'], pair['mmft'] / pair['torchvision'])
        assert set(result['memory_mb']) == {'train_step', 'inference', 'kind'}
    assert report['settings']['retinanet']['model.neck']['add_extra_convs'] == 'on_output'
