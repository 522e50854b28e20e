"""benchmark.py --model ssd-yolov3 runs end to end at batch 2 and reports every figure
(no timing asserted)."""
import json
import math

import pytest

from tools.analysis_tools import benchmark


@pytest.mark.slow
def test_tiny_run_reports_ssd300_pair_and_throughputs(tmp_path, capsys):
    out = tmp_path / 'bench_ssd.json'
    # batch 2: SSDLite's BatchNorm cannot train on one value per channel (its 1x1 levels)
    benchmark.main(['--model', 'ssd-yolov3', '--batch', '2', '--iters', '1', '--warmup', '0',
                    '--threads', '2', '--device', 'cpu', '--models', 'ssd300', 'ssdlite',
                    '--out', str(out)])
    assert '| ssd300_train |' in capsys.readouterr().out
    results = json.loads(out.read_text())['results']
    for phase in ('train', 'infer'):
        for key in (f'ssd300_{phase}', f'ssd300_{phase}_channels_last'):
            pair = results[key]
            assert pair['mmft'] > 0 and pair['torchvision'] > 0
            assert math.isclose(pair['ratio'], pair['mmft'] / pair['torchvision'])
        assert results[f'ssdlite_{phase}']['images_per_s'] > 0
