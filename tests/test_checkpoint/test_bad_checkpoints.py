"""Bad checkpoints get errors that name the file and the fix; nothing runs, nothing half-loads."""
import os
import subprocess
import sys

import pytest
import torch

from mmft.checkpoint import CorruptCheckpointError, UnsafeCheckpointError, read_checkpoint
from mmft.checkpoint.converters.caffe_proto import caffe_messages
from mmft.finetune import FinetuneConfig, load_pretrained
from tests.test_checkpoint.test_checkpoint_io import _RunsShell
from tests.test_finetune.conftest import small_detector
from tools.model_converters import convert as convert_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize('suffix', ['.pth', '.pkl', '.caffemodel'])
def test_zero_byte_files_are_named_as_empty(tmp_path, suffix):
    path = tmp_path / f'empty{suffix}'
    path.write_bytes(b'')
    with pytest.raises(CorruptCheckpointError, match=f'empty{suffix}.* is empty \\(0 bytes\\)'):
        read_checkpoint(path)


def test_truncated_pth_is_named(tmp_path):
    path = tmp_path / 'cut.pth'
    torch.save({'state_dict': {'w': torch.zeros(100)}}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CorruptCheckpointError, match='cut.pth is truncated or not a torch'):
        read_checkpoint(path)


def test_a_folder_is_not_reported_as_missing(tmp_path):
    with pytest.raises(IsADirectoryError, match='is a folder, not a file'):
        read_checkpoint(tmp_path)


def test_odd_meta_and_non_tensor_values_are_named(tmp_path):
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': ['not', 'a', 'dict']},
               tmp_path / 'meta.pth')
    with pytest.raises(CorruptCheckpointError, match="meta.pth' has a meta of type list"):
        read_checkpoint(tmp_path / 'meta.pth')
    torch.save({'state_dict': {'w': torch.zeros(1), 'lr': 0.1}}, tmp_path / 'values.pth')
    with pytest.raises(CorruptCheckpointError, match=r"entries are not tensors, e.g. \['lr'\]"):
        read_checkpoint(tmp_path / 'values.pth')


def test_forcing_torch_off_weights_only_still_refuses_code(tmp_path):
    """TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 must not open the door: mmft passes weights_only."""
    marker = tmp_path / 'ran'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'x': _RunsShell(marker)}, path)
    code = ('import sys; from mmft.checkpoint import read_checkpoint\n'
            'try:\n    read_checkpoint(sys.argv[1])\n'
            'except Exception as e:\n    print(type(e).__name__, e)\n')
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1', PYTHONPATH=REPO)
    out = subprocess.run([sys.executable, '-c', code, str(path)], env=env, capture_output=True,
                         text=True, cwd=REPO).stdout
    assert out.startswith('UnsafeCheckpointError refused to load') and 'system' in out
    assert 'weights_only=False' not in out  # torch's advice is not repeated
    assert not marker.exists()


def test_a_caffemodel_without_layers_is_refused_as_load_from(tmp_path):
    net = caffe_messages()['NetParameter']()
    net.name = 'nothing'
    path = tmp_path / 'empty_net.caffemodel'
    path.write_bytes(net.SerializeToString())
    model = small_detector(3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match='no weight of the model was restored'):
        load_pretrained(model, str(path), FinetuneConfig(), ('a', 'b', 'c'))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_convert_refuses_an_empty_conversion_and_src_equal_dst(tmp_path):
    net = caffe_messages()['NetParameter']()
    net.name = 'nothing'
    src = tmp_path / 'empty_net.caffemodel'
    src.write_bytes(net.SerializeToString())
    with pytest.raises(ValueError, match='holds no tensor that converts'):
        convert_tool.convert(str(src), str(tmp_path / 'out.pth'))
    assert not (tmp_path / 'out.pth').exists()
    with pytest.raises(ValueError, match='SRC and DST are the same file'):
        convert_tool.convert(str(src), str(src))


def test_resume_from_weights_only_file_is_explained(tmp_path):
    from mmft.engine import FinetuneRunner
    from tests.tiny_runs import SOURCE_CLASSES, make_shapes_data, tiny_config
    shapes = make_shapes_data(str(tmp_path / 'data'), num_train=2, num_val=1)
    weights = tmp_path / 'weights.pth'
    cfg = tiny_config(shapes['source'], str(tmp_path / 'run'), SOURCE_CLASSES, max_iters=1)
    runner = FinetuneRunner.from_cfg(cfg)
    torch.save({'state_dict': runner.model.state_dict()}, weights)
    cfg = tiny_config(shapes['source'], str(tmp_path / 'run2'), SOURCE_CLASSES, max_iters=1,
                      load_from=str(weights), resume=True)
    with pytest.raises(ValueError, match='holds no training state .* use load_from='):
        FinetuneRunner.from_cfg(cfg).train()


def test_resume_reads_through_the_safe_reader(tmp_path):
    from mmft.engine import FinetuneRunner
    from tests.tiny_runs import SOURCE_CLASSES, make_shapes_data, tiny_config
    shapes = make_shapes_data(str(tmp_path / 'data'), num_train=2, num_val=1)
    marker = tmp_path / 'ran'
    evil = tmp_path / 'iter_1.pth'
    torch.save({'state_dict': {}, 'meta': {'epoch': 0, 'iter': 1}, 'x': _RunsShell(marker)},
               evil)
    cfg = tiny_config(shapes['source'], str(tmp_path / 'run'), SOURCE_CLASSES, max_iters=2,
                      load_from=str(evil), resume=True)
    with pytest.raises(UnsafeCheckpointError, match='iter_1.pth'):
        FinetuneRunner.from_cfg(cfg).train()
    assert not marker.exists()
