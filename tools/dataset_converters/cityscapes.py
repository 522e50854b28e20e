"""Convert Cityscapes gtFine instance annotations to COCO-format instance json.

Produces MMDetection's ``instancesonly_filtered_gtFine_{train,val,test}.json``:

- one image entry per ``leftImg8bit/{split}/{city}/*_leftImg8bit.png``, ``file_name``
  ``{city}/{name}_leftImg8bit.png``, ``segm_file`` ``{city}/{name}_gtFine_labelIds.png``;
- instances from the shipped ``*_gtFine_instanceIds.png`` (uint16): a pixel value >= 1000 is
  ``label_id * 1000 + k`` (one object), a value < 1000 is a label id (a crowd region of that
  class, ``iscrowd=1``). Where that png is missing, the same id image is drawn in memory from
  ``*_gtFine_polygons.json`` with cityscapesscripts' ``createInstanceImage`` (its
  json2instanceImg is not used: its PNG writer breaks with Pillow >= 13, see PITFALLS.md;
  objects with unknown labels or < 3 points are left out first, as cityscapesscripts would
  exit the process on them);
- only the 8 evaluated instance classes are kept, with their Cityscapes label ids as category
  ids; caravan and trailer (instances, but ignored in evaluation) are dropped as in
  cityscapesscripts' evaluation;
- masks as compressed RLE, bbox and area from the mask.

Example:
    python tools/dataset_converters/cityscapes.py data/cityscapes -o data/cityscapes/annotations
"""
import argparse
import os
import os.path as osp
from glob import glob
from typing import List, Optional

import cv2
import numpy as np
from tqdm import tqdm

from mmft.datasets.coco_writer import CocoWriter, bbox_from_mask, mask_to_rle

# Cityscapes label id -> name for labels with instances (cityscapesscripts.helpers.labels:
# hasInstances=True). The evaluated ones first, in label-id order.
CITYSCAPES_INSTANCE_LABELS = {24: 'person', 25: 'rider', 26: 'car', 27: 'truck', 28: 'bus',
                              31: 'train', 32: 'motorcycle', 33: 'bicycle'}
CITYSCAPES_IGNORED_INSTANCE_LABELS = {29: 'caravan', 30: 'trailer'}  # ignoreInEval=True
CITYSCAPES_CLASSES = tuple(CITYSCAPES_INSTANCE_LABELS.values())
_MAX_LABEL_ID = 33  # ids 0..23 are stuff / void labels without instances

IMG_SUFFIX = '_leftImg8bit.png'
INST_SUFFIX = '_gtFine_instanceIds.png'
SEGM_SUFFIX = '_gtFine_labelIds.png'
POLY_SUFFIX = '_gtFine_polygons.json'


def _ids_from_polygons(writer: CocoWriter, poly_file: str) -> Optional[np.ndarray]:
    """(H, W) instance-id image drawn from a gtFine polygons json, or None (recorded)."""
    try:
        from cityscapesscripts.helpers.annotation import Annotation
        from cityscapesscripts.helpers.labels import name2label
        from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
    except ImportError:
        writer.skip(poly_file, 'no instanceIds png, and drawing one from the polygons needs '
                    'cityscapesscripts (pip install cityscapesscripts)')
        return None
    annotation = Annotation()
    try:
        annotation.fromJsonFile(poly_file)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        writer.skip(poly_file, f'unreadable polygons json ({type(e).__name__}: {e})')
        return None
    kept = []
    for k, obj in enumerate(annotation.objects):
        label = obj.label
        if label not in name2label and label.endswith('group'):
            label = label[:-len('group')]
        if label not in name2label:
            writer.skip(f'{poly_file} object {k}', f'unknown label {obj.label!r}')
        elif len(obj.polygon) < 3:
            writer.skip(f'{poly_file} object {k}',
                        f'polygon with {len(obj.polygon)} points (needs >= 3)')
        else:
            kept.append(obj)
    annotation.objects = kept
    return np.asarray(createInstanceImage(annotation, 'ids'), dtype=np.int32)


def _add_image(writer: CocoWriter, img_dir: str, gt_dir: str, img_file: str) -> None:
    """Add one image's instances, or record why it is skipped."""
    rel = osp.relpath(img_file, img_dir)
    stem = rel[:-len(IMG_SUFFIX)]
    inst_file = osp.join(gt_dir, stem + INST_SUFFIX)
    poly_file = osp.join(gt_dir, stem + POLY_SUFFIX)
    if osp.isfile(inst_file):
        inst = cv2.imread(inst_file, cv2.IMREAD_UNCHANGED)
        if inst is None or inst.ndim != 2:
            writer.skip(inst_file, 'unreadable instance ids png (expected one 16-bit channel)')
            return
    elif osp.isfile(poly_file):
        inst = _ids_from_polygons(writer, poly_file)
        if inst is None:
            return
        inst_file = poly_file
    else:
        writer.skip(rel, f'missing annotation: neither {inst_file} nor {poly_file}')
        return
    image_id = writer.add_image(rel, inst.shape[0], inst.shape[1], segm_file=stem + SEGM_SUFFIX)
    # ids < 24 are stuff labels; filtering first keeps np.unique cheap
    for inst_id in np.unique(inst[inst >= 24]).tolist():
        label_id = inst_id // 1000 if inst_id >= 1000 else inst_id
        if label_id in CITYSCAPES_IGNORED_INSTANCE_LABELS:
            continue
        if label_id not in CITYSCAPES_INSTANCE_LABELS:
            writer.skip(f'{inst_file} value {inst_id}',
                        f'label id {label_id} is not a Cityscapes instance class')
            continue
        mask = inst == inst_id
        writer.add_annotation(image_id, CITYSCAPES_INSTANCE_LABELS[label_id],
                              bbox_from_mask(mask), float(mask.sum()),
                              segmentation=mask_to_rle(mask), iscrowd=int(inst_id < 1000))


def cityscapes_to_coco(img_dir: str,
                       gt_dir: str,
                       out_file: Optional[str] = None,
                       progress: bool = True) -> CocoWriter:
    """Convert one split (e.g. ``leftImg8bit/train`` with ``gtFine/train``).

    Args:
        img_dir: Folder of ``{city}/*_leftImg8bit.png``.
        gt_dir: Folder of ``{city}/*_gtFine_instanceIds.png`` (or ``*_gtFine_polygons.json``).
        out_file: Where to write the json (not written when None).
        progress: Show a progress bar.

    Returns:
        The writer: ``to_dict()`` is the json, ``summary()`` the report, ``skipped`` the items
        left out (missing / unreadable annotation files, unknown labels, bad polygons).
    """
    for name, path in (('img_dir', img_dir), ('gt_dir', gt_dir)):
        if not osp.isdir(path):
            raise FileNotFoundError(f'Cityscapes {name} {path!r} is not a folder; expected e.g. '
                                    f'cityscapes/{"leftImg8bit" if name == "img_dir" else "gtFine"}'
                                    '/train')
    img_files = sorted(glob(osp.join(img_dir, '**', '*' + IMG_SUFFIX), recursive=True))
    if not img_files:
        raise FileNotFoundError(f'no *{IMG_SUFFIX} images under {img_dir!r}')
    writer = CocoWriter(CITYSCAPES_CLASSES, category_ids=list(CITYSCAPES_INSTANCE_LABELS))
    for img_file in tqdm(img_files, desc='Cityscapes', disable=not progress):
        _add_image(writer, img_dir, gt_dir, img_file)
    if out_file is not None:
        writer.dump(out_file)
    return writer


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Convert Cityscapes annotations to COCO json')
    parser.add_argument('cityscapes_path', help='cityscapes data path')
    parser.add_argument('--img-dir', default='leftImg8bit', type=str)
    parser.add_argument('--gt-dir', default='gtFine', type=str)
    parser.add_argument('-o', '--out-dir', help='output folder (default: cityscapes_path)')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    out_dir = args.out_dir or args.cityscapes_path
    os.makedirs(out_dir, exist_ok=True)
    for split in ('train', 'val', 'test'):
        img_dir = osp.join(args.cityscapes_path, args.img_dir, split)
        gt_dir = osp.join(args.cityscapes_path, args.gt_dir, split)
        if not osp.isdir(img_dir):
            print(f'{split}: {img_dir} does not exist, skipped')
            continue
        out_file = osp.join(out_dir, f'instancesonly_filtered_gtFine_{split}.json')
        writer = cityscapes_to_coco(img_dir, gt_dir, out_file, progress=not args.no_progress)
        print(writer.summary(f'{split} -> {out_file}'))


if __name__ == '__main__':
    main()
