"""tools/model_converters/convert.py: foreign files in, mmft .pth with meta out."""
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision

from mmft.checkpoint.converters import COCO_CLASSES
from mmft.checkpoint.converters.caffe_proto import caffe_messages
from mmft.checkpoint import read_checkpoint
from tools.model_converters import convert as convert_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def test_torchvision_classification(tmp_path, capsys):
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / 'r18.pth')
    assert convert_tool.main([str(tmp_path / 'r18.pth'), str(tmp_path / 'out.pth')]) == 0
    out = capsys.readouterr().out
    assert 'fc.weight' in out and 'fc.bias' in out and '(torchvision)' in out
    assert "style='pytorch'" in out
    loaded = read_checkpoint(tmp_path / 'out.pth')
    assert loaded.format == 'mmengine'
    assert loaded.meta['source_format'] == 'torchvision'
    assert loaded.meta['unconverted_keys'] == ['fc.weight', 'fc.bias']
    assert 'backbone.layer4.1.bn2.running_var' in loaded.state_dict
    # a converted file is mmft layout: converting it again is refused
    with pytest.raises(ValueError, match='nothing to convert'):
        convert_tool.convert(str(tmp_path / 'out.pth'), str(tmp_path / 'again.pth'))


def test_detectron2_pkl_keeps_coco_classes(tmp_path, capsys):
    arrays = {'roi_heads.box_predictor.cls_score.weight': np.ones((81, 4), np.float32),
              'roi_heads.box_predictor.cls_score.bias': np.zeros(81, np.float32),
              'backbone.bottom_up.stem.conv1.weight': np.ones((2, 3, 7, 7), np.float32),
              'roi_heads.keypoint_head.foo': np.zeros(1, np.float32)}
    with open(tmp_path / 'm.pkl', 'wb') as f:
        pickle.dump({'model': arrays, '__author__': 'test'}, f)
    convert_tool.main([str(tmp_path / 'm.pkl'), str(tmp_path / 'm.pth')])
    out = capsys.readouterr().out
    assert '1 source keys did not convert' in out and 'roi_heads.keypoint_head.foo' in out
    loaded = read_checkpoint(tmp_path / 'm.pth')
    assert tuple(loaded.meta['dataset_meta']['classes']) == COCO_CLASSES
    assert loaded.state_dict['roi_head.bbox_head.fc_cls.weight'].shape == (81, 4)


@pytest.mark.slow
def test_caffemodel_from_the_command_line(tmp_path):
    net = caffe_messages()['NetParameter']()
    layer = net.layer.add(name='scale_conv1', type='Scale')
    for values in ([1., 2.], [3., 4.]):
        blob = layer.blobs.add()
        blob.shape.dim.append(2)
        blob.data.extend(values)
    src = tmp_path / 'tiny.bin'  # no .caffemodel suffix: --format names it
    src.write_bytes(net.SerializeToString())
    proc = subprocess.run([sys.executable, 'tools/model_converters/convert.py', str(src),
                           str(tmp_path / 'tiny.pth'), '--format', 'caffe'],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert 'every source key converted' in proc.stdout
    sd = read_checkpoint(tmp_path / 'tiny.pth').state_dict
    assert sd['backbone.bn1.weight'].tolist() == [1., 2.]
    assert sd['backbone.bn1.bias'].tolist() == [3., 4.]
