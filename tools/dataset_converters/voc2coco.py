"""Convert PASCAL VOC xml annotations to COCO-format json, as MMDetection's pascal_voc.py.

Conventions (MMDetection's): VOC pixel coordinates are 1-based, so 1 is subtracted from every
corner; ``difficult`` objects are kept with ``iscrowd=1`` (ignored in training and evaluation);
the mask is the box as a 4-point polygon; ``file_name`` is ``VOC{year}/JPEGImages/{id}.jpg``
relative to the devkit. The files are MMDetection's: ``voc07_{train,val,trainval,test}.json``,
``voc12_*`` likewise and, with both years, ``voc0712_{train,val,trainval}.json``. Category ids
are 1..K in class order as in COCO (MMDetection's start at 0; mmft's CocoDataset maps
categories by name, so both load). ``--classes`` converts VOC-style xml of other classes.

Example:
    python tools/dataset_converters/voc2coco.py data/VOCdevkit -o data/VOCdevkit/annotations
"""
import argparse
import os
import os.path as osp
import xml.etree.ElementTree as ET
from typing import List, Optional, Sequence

from mmengine.fileio import list_from_file
from tqdm import tqdm

from mmft.datasets.coco_writer import CocoWriter
from mmft.datasets.voc import VOC_CLASSES

_FIX_LIST = 'add the file, or remove the id from the image list'


def _text(node: ET.Element, tag: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None:
        raise ValueError(f'missing <{tag}>')
    return child.text.strip()


def _add_xml(writer: CocoWriter, devkit_path: str, year: str, img_name: str) -> None:
    """Add one image and its objects, or record why they are skipped."""
    xml_file = osp.join(devkit_path, f'VOC{year}', 'Annotations', f'{img_name}.xml')
    file_name = f'VOC{year}/JPEGImages/{img_name}.jpg'
    if not osp.isfile(xml_file):
        writer.skip(xml_file, f'missing annotation xml; {_FIX_LIST}')
        return
    if not osp.isfile(osp.join(devkit_path, file_name)):
        writer.skip(osp.join(devkit_path, file_name), f'missing image; {_FIX_LIST}')
        return
    try:
        root = ET.parse(xml_file).getroot()
        size = root.find('size')
        if size is None:
            raise ValueError('missing <size>')
        width, height = int(_text(size, 'width')), int(_text(size, 'height'))
    except (ET.ParseError, ValueError) as e:
        writer.skip(xml_file, f'unreadable xml ({e}); fix the file, or remove the id from '
                    'the image list')
        return
    image_id = writer.add_image(file_name, height, width)
    for k, obj in enumerate(root.findall('object')):
        item = f'{xml_file} object {k}'
        try:
            name = _text(obj, 'name')
            difficult_node = obj.find('difficult')
            difficult = 0 if difficult_node is None else int(difficult_node.text or 0)
            box = obj.find('bndbox')
            if box is None:
                raise ValueError('missing <bndbox>')
            x1, y1, x2, y2 = (float(_text(box, t)) - 1 for t in ('xmin', 'ymin', 'xmax', 'ymax'))
        except ValueError as e:
            writer.skip(item, f'unreadable object ({e}); fix the <object> in the xml')
            continue
        if name not in writer.cat_id_of:
            writer.skip(item, f'unknown label {name!r}; fix the <name>, or list the class with '
                        '--classes')
            continue
        if x2 <= x1 or y2 <= y1:
            writer.skip(item, 'empty box (xmax <= xmin or ymax <= ymin); fix the <bndbox>')
            continue
        polygon = [x1, y1, x1, y2, x2, y2, x2, y1]
        writer.add_annotation(image_id, name, [x1, y1, x2 - x1, y2 - y1], (x2 - x1) * (y2 - y1),
                              segmentation=[polygon], iscrowd=int(difficult > 0))


def voc_to_coco(devkit_path: str,
                split: str,
                years: Sequence[str] = ('2007', ),
                out_file: Optional[str] = None,
                classes: Sequence[str] = VOC_CLASSES,
                progress: bool = True) -> CocoWriter:
    """Convert the images listed in ``VOC{year}/ImageSets/Main/{split}.txt`` of each year.

    Args:
        devkit_path: Folder holding ``VOC2007``/``VOC2012``.
        split: ``train``, ``val``, ``trainval`` or ``test``.
        years: Years to merge into one json.
        out_file: Where to write the json (not written when None).
        classes: Class names in category order.
        progress: Show a progress bar.

    Returns:
        The writer: ``to_dict()`` is the json, ``summary()`` the report, ``skipped`` the items
        left out (missing xml / image, unknown label, empty box, unreadable xml, repeated
        id).
    """
    if not osp.isdir(devkit_path):
        raise FileNotFoundError(f'VOC devkit_path {devkit_path!r} is not a folder; pass the '
                                'folder that holds VOC2007/ or VOC2012/')
    writer = CocoWriter(classes)
    for year in years:
        list_file = osp.join(devkit_path, f'VOC{year}', 'ImageSets', 'Main', f'{split}.txt')
        if not osp.isfile(list_file):
            raise FileNotFoundError(f'image list {list_file!r} does not exist; check the year '
                                    f'({year}) and split ({split!r})')
        with open(list_file, encoding='utf-8') as f:
            img_names = [line.strip().split()[0] for line in f if line.strip()]
        seen = set()
        for img_name in tqdm(img_names, desc=f'VOC{year} {split}', disable=not progress):
            if img_name in seen:  # one image entry per file, as COCO wants
                writer.skip(f'{list_file} id {img_name}', 'id listed twice; remove the repeat')
                continue
            seen.add(img_name)
            _add_xml(writer, devkit_path, year, img_name)
    if out_file is not None:
        writer.dump(out_file)
    return writer


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Convert PASCAL VOC annotations to COCO json')
    parser.add_argument('devkit_path', help='pascal voc devkit path')
    parser.add_argument('-o', '--out-dir', help='output folder (default: devkit_path)')
    parser.add_argument('--classes', help='text file with one class name a line '
                        '(default: the 20 VOC classes)')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    years = [y for y in ('2007', '2012') if osp.isdir(osp.join(args.devkit_path, f'VOC{y}'))]
    if not years:
        raise SystemExit(f'{args.devkit_path!r} contains neither VOC2007/ nor VOC2012/; pass '
                         'the VOCdevkit folder that holds them')
    classes = VOC_CLASSES
    if args.classes:
        classes = [c.strip() for c in list_from_file(args.classes) if c.strip()]
    out_dir = args.out_dir or args.devkit_path
    os.makedirs(out_dir, exist_ok=True)
    groups = [(y, [y]) for y in years]
    if len(years) == 2:
        groups.append(('0712', years))
    for tag, group in groups:
        prefix = f'voc{tag[-2:]}' if tag != '0712' else 'voc0712'
        splits = ['train', 'val', 'trainval'] + (['test'] if len(group) == 1 else [])
        for split in splits:
            lists = [osp.join(args.devkit_path, f'VOC{y}', 'ImageSets', 'Main', f'{split}.txt')
                     for y in group]
            if not all(osp.isfile(p) for p in lists):
                print(f'{prefix}_{split}: no image list, skipped')
                continue
            out_file = osp.join(out_dir, f'{prefix}_{split}.json')
            writer = voc_to_coco(args.devkit_path, split, group, out_file, classes,
                                 progress=not args.no_progress)
            print(writer.summary(f'{prefix}_{split} -> {out_file}'))


if __name__ == '__main__':
    main()
