"""benchmark.py --model pipeline (benchmarks/pipeline.py, realtime.py): both pipelines run end
to end (boxes and masks) at a tiny scale and the report says whether the loader keeps up.
No timing is asserted (machines differ)."""
import json
import random

import numpy as np

from mmft.structures import PolygonMasks
from tools.analysis_tools import benchmark
from tools.analysis_tools.benchmarks import pipeline as benchmark_pipeline


def test_pipelines_give_packed_samples_with_masks_that_follow_their_boxes():
    random.seed(0)
    np.random.seed(0)
    for model in sorted(benchmark_pipeline.PIPELINES):
        data, step = benchmark_pipeline.build_pipeline(model, masks='polygon', img_scale=64)
        assert len(data) == 8
        outs = [step(i) for i in range(8)]
        for out in outs:
            inst = out['data_samples'].gt_instances
            assert tuple(out['inputs'].shape) == (3, 64, 64)
            assert isinstance(inst.masks, PolygonMasks) and len(inst.masks) == len(inst.bboxes)
            # ellipses: each mask's box lies within its box (a pixel or two of rounding);
            # a rotated box is the box of its corners, so a sliver of it may hold no mask
            mask_boxes, boxes = inst.masks.get_bboxes().numpy(), inst.bboxes.numpy()
            drawn = np.array([len(p) > 0 for p in inst.masks.masks], bool)
            assert drawn.mean() > 0.5
            assert (mask_boxes[drawn, :2] >= boxes[drawn, :2] - 2).all()
            assert (mask_boxes[drawn, 2:] <= boxes[drawn, 2:] + 2).all()
        assert max(len(o['data_samples'].gt_instances.bboxes) for o in outs) > \
            benchmark_pipeline.OBJECTS  # mixed images hold several scenes' objects


def test_main_reports_the_comparison(tmp_path, capsys):
    out = tmp_path / 'pipeline.json'
    report = benchmark.main(['--model', 'pipeline', '--pipelines', 'rtmdet-tiny', '--images',
                             '2', '--size', '64', '--batch', '1', '--iters', '1',
                             '--workers', '3', '--out', str(out)])
    assert 'pipeline_images_per_s' in capsys.readouterr().out
    assert json.loads(out.read_text()) == report
    (figures, ) = report['results']
    assert figures['model'] == 'rtmdet-tiny' and figures['pipeline_images_per_s'] > 0
    assert np.isclose(figures['loader_images_per_s'], 3 * figures['pipeline_images_per_s'],
                      atol=0.02)
    assert figures['train_images_per_s'] > 0
    assert figures['pipeline_is_bottleneck'] == (
        figures['loader_images_per_s'] < figures['train_images_per_s'])
