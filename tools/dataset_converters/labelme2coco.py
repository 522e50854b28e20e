"""Convert a folder of LabelMe json files to one COCO-format instance json.

Conventions: ``polygon`` shapes become polygon masks, ``rectangle`` shapes (2 corner points)
boxes with a 4-point polygon, ``circle`` shapes (centre, point on the rim) 32-point polygons;
shapes sharing a non-null ``group_id`` and a label form one instance (LabelMe's way to draw an
object in parts). Other shape types (line, point, linestrip) have no area and are skipped.
Boxes are clipped to the image. ``file_name`` is the image path relative to ``input_dir``.
The class list is read from a file (one name a line, category ids 1..K in that order) or
collected from all labels in sorted order.

Example:
    python tools/dataset_converters/labelme2coco.py data/labelme data/labelme/ann.json \
        --classes classes.txt
"""
import argparse
import json
import os.path as osp
from glob import glob
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from mmft.datasets.coco_writer import CocoWriter, polygon_area


def _shape_polygon(shape: Dict[str, Any]) -> Tuple[Optional[np.ndarray], str]:
    """(K, 2) polygon of a LabelMe shape, or None and the reason it has none."""
    shape_type = shape.get('shape_type') or 'polygon'
    try:
        points = np.asarray(shape.get('points', []), dtype=np.float64).reshape(-1, 2)
    except ValueError:
        return None, 'points are not (x, y) pairs; fix the shape\'s points'
    if shape_type == 'polygon':
        if len(points) < 3:
            return None, f'polygon with {len(points)} points (needs >= 3); redraw it'
        return points, ''
    if shape_type == 'rectangle':
        if len(points) != 2:
            return None, f'rectangle with {len(points)} points (needs 2); redraw it'
        (x1, y1), (x2, y2) = points.min(axis=0), points.max(axis=0)
        return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]), ''
    if shape_type == 'circle':
        if len(points) != 2:
            return None, f'circle with {len(points)} points (needs 2); redraw it'
        radius = np.linalg.norm(points[1] - points[0])
        t = 2 * np.pi * np.arange(32) / 32
        return points[0] + radius * np.stack([np.cos(t), np.sin(t)], axis=1), ''
    return None, (f'unsupported shape_type {shape_type!r} (no area); draw a polygon, rectangle '
                  'or circle')


def collect_labels(json_files: Sequence[str]) -> List[str]:
    """Sorted set of the shape labels in the given LabelMe files (unreadable files ignored)."""
    labels = set()
    for path in json_files:
        try:
            with open(path, encoding='utf-8') as f:
                labels.update(str(s['label']) for s in json.load(f).get('shapes') or []
                              if isinstance(s, dict) and s.get('label') is not None)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return sorted(labels)


def _image_size(data: Dict[str, Any], image_path: str) -> Tuple[int, int]:
    """(height, width) from the json, else from the image header (OSError if unreadable)."""
    height, width = data.get('imageHeight'), data.get('imageWidth')
    if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
        return height, width
    from PIL import Image  # only for files that lack the size fields
    with Image.open(image_path) as img:
        return img.size[1], img.size[0]


def _add_file(writer: CocoWriter, input_dir: str, json_file: str) -> None:
    """Add one LabelMe file's image and instances, or record why they are skipped."""
    try:
        with open(json_file, encoding='utf-8') as f:
            data = json.load(f)
        # LabelMe on Windows writes imagePath with backslashes
        image_path = osp.normpath(osp.join(osp.dirname(json_file),
                                           data['imagePath'].replace('\\', '/')))
        shapes = data.get('shapes') or []
        if not isinstance(shapes, list):
            raise TypeError('"shapes" is not a list')
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        writer.skip(json_file, f'unreadable LabelMe json ({type(e).__name__}: {e}); fix the '
                    'file, or move it out of input_dir')
        return
    if not osp.isfile(image_path):
        writer.skip(json_file, f'missing image {image_path}; put it there or fix "imagePath"')
        return
    try:
        height, width = _image_size(data, image_path)
    except OSError as e:
        writer.skip(json_file, f'unreadable image {image_path} ({type(e).__name__}); replace it')
        return
    image_id = writer.add_image(osp.relpath(image_path, input_dir), height, width)
    instances: Dict[Any, Tuple[str, List[np.ndarray]]] = {}
    for k, shape in enumerate(shapes):
        item = f'{json_file} shape {k}'
        if not isinstance(shape, dict):
            writer.skip(item, 'shape is not a json object; fix the file')
            continue
        label = str(shape.get('label'))
        if label not in writer.cat_id_of:
            writer.skip(item, f'unknown label {label!r}; fix the label, or add it to --classes')
            continue
        polygon, reason = _shape_polygon(shape)
        if polygon is None:
            writer.skip(item, reason)
            continue
        group_id = shape.get('group_id')
        key = (label, group_id) if group_id is not None else k
        instances.setdefault(key, (label, []))[1].append(polygon)
    for label, polygons in instances.values():
        pts = np.concatenate(polygons)
        x1, y1 = np.clip(pts.min(axis=0), 0, [width, height])
        x2, y2 = np.clip(pts.max(axis=0), 0, [width, height])
        segmentation = [p.ravel().tolist() for p in polygons]
        area = polygon_area(segmentation, height, width)
        if x2 <= x1 or y2 <= y1 or area == 0:
            writer.skip(f'{json_file} label {label!r}', 'instance of zero area or outside the '
                        'image; redraw it')
            continue
        writer.add_annotation(image_id, label, [x1, y1, x2 - x1, y2 - y1], area,
                              segmentation=segmentation, iscrowd=0)


def labelme_to_coco(input_dir: str,
                    out_file: Optional[str] = None,
                    classes: Optional[Sequence[str]] = None,
                    progress: bool = True) -> CocoWriter:
    """Convert every ``*.json`` under ``input_dir`` (recursively, sorted) to one COCO json.

    Args:
        input_dir: Folder of LabelMe json files; ``imagePath`` is relative to each json.
        out_file: Where to write the json (not written when None).
        classes: Class names in category order; collected from the labels when None.
        progress: Show a progress bar.

    Returns:
        The writer: ``to_dict()`` is the json, ``summary()`` the report, ``skipped`` the items
        left out (unreadable json, missing image, unknown label, degenerate shape).
    """
    if not osp.isdir(input_dir):
        raise FileNotFoundError(f'LabelMe input_dir {input_dir!r} is not a folder; pass the '
                                'folder that holds the LabelMe *.json files')
    out_abs = osp.abspath(out_file) if out_file else None
    json_files = sorted(p for p in glob(osp.join(input_dir, '**', '*.json'), recursive=True)
                        if osp.abspath(p) != out_abs)
    if not json_files:
        raise FileNotFoundError(f'no LabelMe *.json files found under {input_dir!r}; save the '
                                'annotations there (LabelMe: File > Save)')
    if classes is None:
        classes = collect_labels(json_files)
    writer = CocoWriter(classes)
    for json_file in tqdm(json_files, desc='LabelMe', disable=not progress):
        _add_file(writer, input_dir, json_file)
    if out_file is not None:
        writer.dump(out_file)
    return writer


def read_classes(path: str) -> List[str]:
    """Class names from a text file, one a line (blank lines ignored)."""
    with open(path, encoding='utf-8') as f:
        return [line.strip() for line in f if line.strip()]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Convert LabelMe annotations to COCO json')
    parser.add_argument('input_dir', help='folder of LabelMe json files')
    parser.add_argument('out_file', help='output COCO json')
    parser.add_argument('--classes', help='text file with one class name a line '
                        '(default: all labels found, sorted)')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    classes = read_classes(args.classes) if args.classes else None
    writer = labelme_to_coco(args.input_dir, args.out_file, classes,
                             progress=not args.no_progress)
    print(writer.summary(f'LabelMe -> {args.out_file}'))


if __name__ == '__main__':
    main()
