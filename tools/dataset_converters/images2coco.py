"""Turn a folder of images into a COCO json without annotations (for tools/test.py --show).

``file_name`` is relative to the image folder; sizes are read from the file headers. By
default the json goes to ``{img_dir}/../annotations/{out}`` as with MMDetection's tool.

Example:
    python tools/dataset_converters/images2coco.py data/demo/images classes.txt demo.json
"""
import argparse
import os.path as osp
from glob import glob
from typing import List, Optional, Sequence

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from mmft.datasets.coco_writer import CocoWriter

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def images_to_coco(img_dir: str,
                   classes: Sequence[str],
                   out_file: Optional[str] = None,
                   exclude_extensions: Sequence[str] = (),
                   progress: bool = True) -> CocoWriter:
    """List every image under ``img_dir`` (recursively, sorted) in a COCO json.

    Args:
        img_dir: Folder of images.
        classes: Class names for the ``categories`` (ids 1..K).
        out_file: Where to write the json (not written when None).
        exclude_extensions: Extensions to leave out, e.g. ``('png', )``.
        progress: Show a progress bar.

    Returns:
        The writer; ``skipped`` lists files with an image extension that cannot be read.
    """
    if not osp.isdir(img_dir):
        raise FileNotFoundError(f'img_dir {img_dir!r} is not a folder; pass the folder that '
                                'holds the images')
    if not classes:
        raise ValueError('classes is empty; give the class names the test model predicts')
    excluded = tuple('.' + e.lower().lstrip('.') for e in exclude_extensions)
    files = sorted(p for p in glob(osp.join(img_dir, '**', '*'), recursive=True)
                   if p.lower().endswith(IMG_EXTENSIONS) and not p.lower().endswith(excluded)
                   and osp.isfile(p))
    writer = CocoWriter(classes)
    for path in tqdm(files, desc='images', disable=not progress):
        rel = osp.relpath(path, img_dir)
        try:
            with Image.open(path) as img:
                width, height = img.size
        except (OSError, UnidentifiedImageError) as e:
            writer.skip(path, f'unreadable image ({type(e).__name__}); replace or remove it')
            continue
        writer.add_image(rel, height, width)
    if not writer.images:
        raise FileNotFoundError(f'no readable images with extensions {IMG_EXTENSIONS} '
                                f'(excluding {excluded}) under {img_dir!r}')
    if out_file is not None:
        writer.dump(out_file)
    return writer


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Convert a folder of images to a COCO json '
                                     'without annotations')
    parser.add_argument('img_path', help='image root folder')
    parser.add_argument('classes', help='text file with one class name a line')
    parser.add_argument('out', help='output json name, written to img_path/../annotations/ '
                        'unless it contains a folder')
    parser.add_argument('-e', '--exclude-extensions', nargs='+', default=(),
                        help='image extensions to leave out, e.g. png bmp')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if not args.out.endswith('.json'):
        raise SystemExit(f'out={args.out!r} must end with .json')
    with open(args.classes, encoding='utf-8') as f:
        classes = [line.strip() for line in f if line.strip()]
    out_file = args.out if osp.dirname(args.out) else osp.join(args.img_path, '..',
                                                                'annotations', args.out)
    writer = images_to_coco(args.img_path, classes, out_file, args.exclude_extensions,
                            progress=not args.no_progress)
    print(writer.summary(f'images -> {osp.normpath(out_file)}'))


if __name__ == '__main__':
    main()
