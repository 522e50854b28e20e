"""Convert a torchvision / Detectron2 / Caffe checkpoint to an mmft ``.pth``.

Example:
    python tools/model_converters/convert.py maskrcnn_resnet50_fpn_coco.pth mask_rcnn_tv.pth
    python tools/model_converters/convert.py model_final_f10217.pkl mask_rcnn_d2.pth
    python tools/model_converters/convert.py ResNet-50-model.caffemodel r50_caffe.pth --format caffe

The output is ``{'state_dict': ..., 'meta': {...}}`` in mmft's (MMDetection 3.x)
layout, with ``meta.source_format``, ``meta.dataset_meta.classes`` (where the
source says), ``meta.unconverted_keys`` and ``meta.converted_from``. Everything
that did not convert is printed. The same conversion happens on the fly when
such a file is given to ``load_from``; converting once makes loading faster and
lets you inspect the result.
"""
import argparse
import io
import os.path as osp
import sys
from typing import List, Optional

import torch

from mmft.checkpoint.converters import FORMATS
from mmft.checkpoint import read_checkpoint, write_atomically


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Convert a foreign checkpoint to mmft layout')
    parser.add_argument('src', help='torchvision .pth, Detectron2 .pkl or Caffe .caffemodel')
    parser.add_argument('dst', help='output mmft .pth')
    parser.add_argument('--format', default='auto', choices=FORMATS,
                        help='source format (default: detect from the file)')
    return parser.parse_args(argv)


def convert(src: str, dst: str, source_format: str = 'auto') -> dict:
    """Convert ``src`` and write ``dst``; returns the written meta.

    Raises:
        ValueError: ``src`` is ``dst``, is already in mmft's layout (nothing to convert)
            or converts to no tensor at all; ``dst`` is not written then.
    """
    if osp.exists(dst) and osp.samefile(src, dst) or osp.abspath(src) == osp.abspath(dst):
        raise ValueError(f'SRC and DST are the same file ({src!r}); write the converted '
                         'checkpoint elsewhere so the original is kept')
    loaded = read_checkpoint(src, source_format=source_format)
    if loaded.format not in ('torchvision', 'detectron2', 'caffe', 'swin'):
        raise ValueError(f'{src!r} is already an mmft / MMDetection checkpoint (format '
                         f'{loaded.format!r}) or of an unknown layout; nothing to convert. '
                         'Name the source with --format torchvision|detectron2|caffe if it is one.')
    if not loaded.state_dict:
        raise ValueError(f'{src!r} ({loaded.format}) holds no tensor that converts to mmft\'s '
                         f'layout ({len(loaded.unconverted)} source keys, none recognised, e.g. '
                         f'{loaded.unconverted[:5]}); nothing was written to {dst!r}')
    meta = dict(loaded.meta)
    meta['converted_from'] = osp.basename(src)
    buffer = io.BytesIO()
    torch.save({'state_dict': loaded.state_dict, 'meta': meta}, buffer)
    write_atomically(buffer.getvalue(), dst)
    return meta


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    meta = convert(args.src, args.dst, args.format)
    classes = meta.get('classes')
    print(f'{args.src} ({meta["source_format"]}) -> {args.dst}')
    print(f'classes: {len(classes)} ({", ".join(classes[:5])}, ...)' if classes
          else 'classes: not recorded in the source (set metainfo.classes in your config)')
    if meta.get('style'):
        print(f"trained with ResNet style={meta['style']!r}; the config overrides these weights "
              'need are in docs/model_zoo.md')
    unconverted = meta.get('unconverted_keys', [])
    if meta.get('dropped_rows'):
        print(f'dropped rows: {meta["dropped_rows"]}')
    if unconverted:
        print(f'{len(unconverted)} source keys did not convert:')
        for key in unconverted:
            print(f'  {key}')
    else:
        print('every source key converted')
    return 0


if __name__ == '__main__':
    sys.exit(main())
