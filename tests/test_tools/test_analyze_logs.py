"""analyze_logs reads MMEngine json logs: curves to a PNG, training time per iteration."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from tools.analysis_tools import analyze_logs


def _write_run(work_dir, timestamp='20240101_000000', loss_scale=1.0) -> str:
    """A 2-epoch run's vis_data/scalars.json as MMEngine 0.10 writes it."""
    lines, it = [], 0
    for epoch in (1, 2):
        for time in (0.9, 0.2, 0.4):  # the first iteration of an epoch is slow
            it += 1
            lines.append(dict(lr=0.02, data_time=0.01, loss=loss_scale * 2 / it,
                              loss_cls=1 / it, time=time * epoch, epoch=epoch, iter=it, step=it))
        lines.append({'coco/bbox_mAP': 0.1 * epoch, 'coco/segm_mAP': 0.05 * epoch,
                      'data_time': 0.3, 'time': 0.5, 'step': epoch})
    path = osp.join(work_dir, timestamp, 'vis_data', 'scalars.json')
    os.makedirs(osp.dirname(path))
    with open(path, 'w') as f:
        f.write('\n'.join(json.dumps(line) for line in lines) + '\n')
    return path


def test_plot_curve_writes_a_png_from_two_work_dirs(tmp_path):
    _write_run(str(tmp_path / 'a'))
    _write_run(str(tmp_path / 'b'), loss_scale=2.0)
    out = str(tmp_path / 'curves.png')
    analyze_logs.main(['plot_curve', str(tmp_path / 'a'), str(tmp_path / 'b'),
                       '--keys', 'loss', 'bbox_mAP', '--legend', 'lr 0.02', 'lr 0.01',
                       '--title', 'runs', '--out', out])
    img = cv2.imread(out)
    assert img is not None and img.shape == (600, 800, 3)  # 8 x 3*2 inches at 100 dpi
    assert img.std() > 10  # not a blank canvas


def test_curves_use_iterations_for_losses_and_epochs_for_metrics(tmp_path):
    records = analyze_logs.load_json_log(_write_run(str(tmp_path)))
    xs, ys, x_label = analyze_logs.get_curve(records, 'loss')
    assert x_label == 'iter' and xs.tolist() == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(ys, [2, 1, 2 / 3, 0.5, 0.4, 2 / 6])
    xs, ys, x_label = analyze_logs.get_curve(records, 'bbox_mAP')
    assert x_label == 'epoch' and xs.tolist() == [1, 2] and ys.tolist() == [0.1, 0.2]
    # 'time' of validation lines must not mix into the training curve
    assert analyze_logs.get_curve(records, 'time')[0].tolist() == [1, 2, 3, 4, 5, 6]
    with pytest.raises(KeyError, match="'acc' is not in the log; available keys: .*loss_cls"):
        analyze_logs.get_curve(records, 'acc')


def test_work_dir_resolves_to_its_newest_run(tmp_path):
    _write_run(str(tmp_path), '20240101_000000')
    newest = _write_run(str(tmp_path), '20240202_000000')
    assert analyze_logs.find_json_log(str(tmp_path)) == newest
    with pytest.raises(FileNotFoundError, match='no MMEngine json log'):
        analyze_logs.find_json_log(str(tmp_path / 'missing'))


def test_legend_count_is_checked(tmp_path):
    _write_run(str(tmp_path))
    with pytest.raises(ValueError, match='--legend has 3 labels'):
        analyze_logs.plot_curve([str(tmp_path)], ['loss'], out=str(tmp_path / 'x.png'),
                                legend=['a', 'b', 'c'])


def test_cal_train_time_leaves_out_each_epochs_first_iteration(tmp_path, capsys):
    log = _write_run(str(tmp_path))
    stats = analyze_logs.cal_train_time(log)
    assert stats['slowest_epoch'] == 2 and stats['fastest_epoch'] == 1
    assert stats['fastest_time'] == pytest.approx(0.3)   # (0.2 + 0.4) / 2
    assert stats['slowest_time'] == pytest.approx(0.6)
    assert stats['average_iter_time'] == pytest.approx(0.45)
    assert 'average iter time: 0.4500 s/iter' in capsys.readouterr().out
    assert analyze_logs.cal_train_time(log, include_outliers=True)['fastest_time'] == \
        pytest.approx(0.5)
