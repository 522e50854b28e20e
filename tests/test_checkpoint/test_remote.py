"""Remote checkpoints: served from 127.0.0.1, cached in the torch hub, verified, offline-safe."""
import hashlib
import http.server
import os
import threading

import pytest
import torch

from mmft.checkpoint import read_checkpoint
from mmft.checkpoint.remote import (RemoteCheckpointError, cache_path, expected_hash_prefix,
                                    fetch, resolve_url)


class _Handler(http.server.BaseHTTPRequestHandler):
    files = {}  # path -> bytes
    truncate = set()  # paths sent short of their Content-Length
    hits = []

    def do_GET(self):  # noqa: N802
        self.hits.append(self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2] if self.path in self.truncate else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    _Handler.files, _Handler.truncate, _Handler.hits = {}, set(), []
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}', _Handler
    httpd.shutdown()
    httpd.server_close()


def _checkpoint_bytes(tmp_path, value=1.0):
    path = tmp_path / 'src.pth'
    torch.save({'state_dict': {'w': torch.full((2,), value)},
                'meta': {'dataset_meta': {'classes': ('a',)}}}, path)
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def test_download_then_cache_hit_without_network(server, tmp_path):
    base, handler = server
    data, digest = _checkpoint_bytes(tmp_path)
    name = f'/zoo/model_20200101-{digest[:8]}.pth'
    handler.files[name] = data
    url = base + name
    loaded = read_checkpoint(url)
    assert torch.equal(loaded.state_dict['w'], torch.ones(2))
    cached = cache_path(url)
    assert cached == str(tmp_path / 'torch' / 'hub' / 'checkpoints' /
                         f'model_20200101-{digest[:8]}.pth')
    assert open(cached, 'rb').read() == data
    handler.files.clear()  # the server forgets it: the cache answers
    assert fetch(url) == cached and handler.hits == [name]
    assert [f for f in os.listdir(os.path.dirname(cached)) if f.endswith('.part')] == []


def test_hash_mismatch_is_refused_and_nothing_is_cached(server, tmp_path):
    base, handler = server
    data, _ = _checkpoint_bytes(tmp_path)
    handler.files['/zoo/model-deadbeef.pth'] = data
    with pytest.raises(RemoteCheckpointError, match='does not match the deadbeef'):
        fetch(base + '/zoo/model-deadbeef.pth', progress=False)
    folder = os.path.dirname(cache_path(base + '/zoo/model-deadbeef.pth'))
    assert os.listdir(folder) == []


def test_interrupted_download_leaves_nothing(server, tmp_path):
    base, handler = server
    data, digest = _checkpoint_bytes(tmp_path)
    name = f'/zoo/cut-{digest[:8]}.pth'
    handler.files[name] = data
    handler.truncate.add(name)
    with pytest.raises(RemoteCheckpointError, match='broke off'):
        fetch(base + name, progress=False)
    assert os.listdir(os.path.dirname(cache_path(base + name))) == []


def test_offline_names_the_url_and_the_cache_path(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    url = 'http://127.0.0.1:9/zoo/mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth'
    expected = str(tmp_path / 'torch' / 'hub' / 'checkpoints' /
                   'mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth')
    with pytest.raises(RemoteCheckpointError) as info:
        read_checkpoint(url)
    assert url in str(info.value) and f'put it at {expected}' in str(info.value)


def test_model_zoo_names_resolve_as_mmcv():
    assert resolve_url('torchvision://resnet50').startswith('https://download.pytorch.org/')
    assert resolve_url('torchvision://resnet50').endswith('.pth')
    assert resolve_url('open-mmlab://detectron2/resnet50_caffe').endswith(
        'resnet50_msra-5891d200.pth')
    with pytest.raises(RemoteCheckpointError, match="closest: \\['resnet50"):
        resolve_url('torchvision://resnet5')
    assert expected_hash_prefix('x/mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth') == \
        'd4b0c5d6'
    assert expected_hash_prefix('x/model_final_f10217.pkl') is None


def test_load_from_url_through_the_runner(server, tmp_path):
    """A MMDetection-style config's load_from URL fine-tunes from the downloaded file."""
    from mmft.engine import FinetuneRunner
    from tests.tiny_runs import SOURCE_CLASSES, TARGET_CLASSES, make_shapes_data, tiny_config
    base, handler = server
    shapes = make_shapes_data(str(tmp_path / 'data'), num_train=2, num_val=1)
    FinetuneRunner.from_cfg(tiny_config(shapes['source'], str(tmp_path / 'src'),
                                        SOURCE_CLASSES, max_iters=1)).train()
    data = (tmp_path / 'src' / 'iter_1.pth').read_bytes()
    name = f'/zoo/shapes-{hashlib.sha256(data).hexdigest()[:8]}.pth'
    handler.files[name] = data
    cfg = tiny_config(shapes['target'], str(tmp_path / 'ft'), TARGET_CLASSES, max_iters=1,
                      load_from=base + name)
    runner = FinetuneRunner.from_cfg(cfg)
    runner.train()
    assert runner.load_report.source_format == 'mmengine'
    assert len(runner.load_report.transferred) == 6
