"""benchmark.py --model backbones runs end to end at a tiny size; no timing is asserted."""
import json
import math

from tools.analysis_tools import benchmark


def test_tiny_run_reports_every_backbone(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    benchmark.main(['--model', 'backbones', '--size', '64', '--batch', '1', '--objects', '2',
                    '--iters', '1', '--warmup', '0', '--threads', '1', '--backbones', 'swin-t',
                    '--out', str(out)])
    assert 'swin-t' in capsys.readouterr().out
    report = json.loads(out.read_text())
    for phase in ('train_step', 'inference'):
        res = report['results'][phase]
        assert set(res) == {'r50', 'swin-t'}  # r50 is added as the reference
        assert res['r50']['ratio'] == 1.0
        assert math.isclose(res['swin-t']['ratio'],
                            res['swin-t']['seconds'] / res['r50']['seconds'])
    # backbone sizes: Swin-T ~27.5M, ResNet-50 ~23.5M parameters
    assert 20e6 < report['backbone_params']['swin-t'] < 35e6
    assert 20e6 < report['backbone_params']['r50'] < 30e6
