"""benchmark_yolox.py runs end to end at a tiny size and reports both throughputs.

No timing is asserted (machines differ); only that the figures are there and positive.
"""
import json

from tools.analysis_tools import benchmark_yolox


def test_tiny_run_reports_train_and_inference(tmp_path, capsys, monkeypatch):
    out = tmp_path / 'bench.json'
    monkeypatch.setattr('sys.argv', ['benchmark_yolox.py', '--size', '64', '--batch', '1',
                                     '--iters', '1', '--l1', '--out', str(out)])
    benchmark_yolox.main()
    printed = capsys.readouterr().out
    assert '"model": "yolox_s"' in printed and '"l1": true' in printed
    figures = json.loads(out.read_text())
    assert set(figures) == {'train_images_per_s', 'infer_images_per_s'}
    assert all(v > 0 for v in figures.values())
