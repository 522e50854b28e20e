"""inspect_finetune: the dry run prints the load report, the class table and the counts."""
import re

import torch

from mmft.checkpoint import torch_load_safely
from mmft.engine import FinetuneRunner
from tests.tiny_runs import SOURCE_CLASSES, TARGET_CLASSES, make_shapes_data, tiny_config
from tools.analysis_tools.inspect_finetune import inspect_finetune, main


def test_dry_run_reports_without_training(tmp_path, capsys):
    shapes = make_shapes_data(str(tmp_path / 'data'), num_train=2, num_val=1)
    source = tiny_config(shapes['source'], str(tmp_path / 'src'), SOURCE_CLASSES, max_iters=1)
    FinetuneRunner.from_cfg(source).train()
    ckpt = str(tmp_path / 'src' / 'iter_1.pth')
    before = torch_load_safely(ckpt)['state_dict']['backbone.conv1.weight'].clone()

    cfg = tiny_config(shapes['target'], str(tmp_path / 'ft'), TARGET_CLASSES,
                      finetune=dict(freeze=['backbone'], class_mapping={'box': 'square'},
                                    unfreeze=['backbone.layer4@iter10']))
    text = inspect_finetune(cfg, load_from=ckpt)
    assert "dataset classes (5): ['circle', 'triangle', 'star', 'box', 'pentagon']" in text
    assert '| roi_head.bbox_head |' in text and 'class-transferred' in text
    assert '| box       | square                | mapping' in text
    assert '| pentagon  | -                     | new (initialised) |' in text
    # everything restored but the new class' share of the 6 class-row tensors (4 of 5 matched)
    restored, weights, share = re.search(r'restored (\d+)/(\d+) weight tensors in scope '
                                         r'\((\d+\.\d)%', text).groups()
    assert int(restored) == int(weights)
    assert float(share) == round(100 * (int(weights) - 6 * 0.2) / int(weights), 1)
    assert "unfreezes ['backbone.layer4'] at iter 10" in text
    frozen_row = next(line for line in text.splitlines() if line.startswith('| backbone.layer1'))
    assert frozen_row.split('|')[2].strip() == '0'  # nothing trainable in a frozen stage
    # the dry run neither trains nor writes
    assert not (tmp_path / 'ft').exists()
    after = torch_load_safely(ckpt)['state_dict']['backbone.conv1.weight']
    assert torch.equal(before, after)

    config = str(tmp_path / 'ft.py')
    cfg.dump(config)
    main([config, '--load-from', ckpt])
    assert 'class-aware head transfer' in capsys.readouterr().out
