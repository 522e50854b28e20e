"""Checkpoints named by URL or model-zoo name, fetched once into the torch hub cache.

``load_from`` and backbone ``init_cfg`` accept what MMDetection's configs write:

- ``https://download.openmmlab.com/.../mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth``
- ``torchvision://resnet50`` (also ``resnet50.imagenet1k_v2``, ``modelzoo://``)
- ``open-mmlab://detectron2/resnet50_caffe`` (also ``openmmlab://``) and ``mmcls://NAME``

Names resolve through the tables MMEngine ships (the ones MMCV's loader uses).
The file goes to ``$TORCH_HOME/hub/checkpoints/<file name>`` through a temporary
file renamed on success, so an interrupted download leaves nothing behind; a
file name that carries a hash (``...-d4b0c5d6.pth``) must match the first hex
digits of the file's sha256. A cached file is used with no network. Offline,
the error names the URL and the exact path to put the file at.
"""
import hashlib
import http.client
import os
import os.path as osp
import re
import sys
import tempfile
import urllib.error
import urllib.request
from typing import Dict, Optional
from urllib.parse import urlparse

import torch

#: model-zoo name schemes -> what resolves them
SCHEMES = ('torchvision://', 'modelzoo://', 'open-mmlab://', 'openmmlab://', 'mmcls://')
URL_PREFIXES = ('http://', 'https://')
#: torch hub's convention: the hex digits after the last '-' of the stem
_HASH = re.compile(r'-([a-f0-9]{6,64})\.[A-Za-z0-9]+$')
_CHUNK = 1 << 20


class RemoteCheckpointError(RuntimeError):
    """A remote checkpoint could not be resolved, fetched or verified."""


def is_remote(source: str) -> bool:
    return isinstance(source, str) and source.startswith(URL_PREFIXES + SCHEMES)


def _name_table(scheme: str) -> Dict[str, str]:
    # MMEngine's own tables: the names MMDetection's configs use resolve as in MMCV
    from mmengine.runner import checkpoint as mmengine_checkpoint
    if scheme in ('torchvision://', 'modelzoo://'):
        return mmengine_checkpoint.get_torchvision_models()
    if scheme == 'mmcls://':
        return mmengine_checkpoint.get_mmcls_models()
    table = dict(mmengine_checkpoint.get_external_models())
    for old, new in mmengine_checkpoint.get_deprecated_model_names().items():
        if new in table:
            table.setdefault(old, table[new])
    return table


def resolve_url(source: str) -> str:
    """The URL behind ``source`` (a URL is returned as it is).

    Raises:
        RemoteCheckpointError: an unknown model-zoo name (the closest names are listed).
    """
    if source.startswith(URL_PREFIXES):
        return source
    scheme = next(s for s in SCHEMES if source.startswith(s))
    name = source[len(scheme):]
    table = _name_table(scheme)
    url = table.get(name)
    if url is None:
        import difflib
        close = difflib.get_close_matches(name, list(table), n=5, cutoff=0.5)
        raise RemoteCheckpointError(
            f'{source!r}: {name!r} is not a {scheme} model name; closest: {close}. '
            'Give the checkpoint URL or a local file instead.')
    if not url.startswith(URL_PREFIXES):
        raise RemoteCheckpointError(f'{source!r} resolves to {url!r}, a file in the MMEngine '
                                    'home, not a URL: give its local path instead')
    return url


def cache_path(url: str) -> str:
    """Where the file of ``url`` is (or will be) cached: torch hub's checkpoints folder."""
    name = osp.basename(urlparse(url).path)
    if not name:
        raise RemoteCheckpointError(f'URL {url!r} names no file')
    return osp.join(torch.hub.get_dir(), 'checkpoints', name)


def expected_hash_prefix(path_or_url: str) -> Optional[str]:
    """The sha256 prefix a model-zoo file name carries (``...-d4b0c5d6.pth``), or None."""
    match = _HASH.search(osp.basename(urlparse(path_or_url).path))
    return match[1] if match else None


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _check_hash(path: str, url: str, actual: Optional[str] = None) -> None:
    prefix = expected_hash_prefix(url)
    if prefix is None:
        return
    actual = actual or sha256_of(path)
    if not actual.startswith(prefix):
        raise RemoteCheckpointError(
            f'{path}: sha256 {actual[:len(prefix)]}... does not match the {prefix} that the '
            f'file name of {url} promises: a corrupt or different file. Delete it and '
            'download again.')


def fetch(source: str, progress: bool = True, timeout: float = 60.0) -> str:
    """The local path of the remote checkpoint ``source``, downloading it if not cached.

    Raises:
        RemoteCheckpointError: unknown name, no network (the message names the URL
            and the cache path to put the file at), an interrupted download or a
            hash mismatch. Nothing is left in the cache then.
    """
    url = resolve_url(source)
    path = cache_path(url)
    if osp.isfile(path):
        _check_hash(path, url)
        return path
    os.makedirs(osp.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.part',
                               dir=osp.dirname(path))
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, 'wb') as out:
            _download(url, out, digest, progress, timeout, source, path)
        _check_hash(tmp, url, digest.hexdigest())
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return path


def _download(url: str, out, digest, progress: bool, timeout: float, source: str,
              path: str) -> None:
    """Stream ``url`` into ``out``, hashing as it goes."""
    offline = (f' This machine may be offline: download {url} elsewhere and put it at '
               f'{path} (a cached file is used with no network), or give a local path.')
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RemoteCheckpointError(f'cannot download {source} ({url}): {exc}.{offline}') \
            from None
    total = response.headers.get('Content-Length')
    total = int(total) if total and total.isdigit() else None
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, unit='B', unit_scale=True, unit_divisor=1024,
                   desc=osp.basename(path), file=sys.stderr)
    received = 0
    try:
        with response:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise RemoteCheckpointError(
                        f'download of {url} broke off after {received} bytes ({exc}); nothing '
                        'was cached. Run again.') from None
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    if total is not None and received != total:
        raise RemoteCheckpointError(f'download of {url} broke off: {received} of {total} bytes; '
                                    'nothing was cached. Run again.')
