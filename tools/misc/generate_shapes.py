"""Generate the synthetic shapes benchmark (source and target domains, train and val splits).

Example:
    python tools/misc/generate_shapes.py --out data/shapes --num-train 200 --num-val 50
"""
import argparse
import json
import os.path as osp
import sys
from collections import Counter
from typing import Dict, List, Optional

from mmft.datasets.synthetic import generate_shapes_benchmark


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Generate the synthetic shapes datasets')
    parser.add_argument('--out', default='data/shapes', help='output root folder')
    parser.add_argument('--num-train', type=int, default=200, help='train images per domain')
    parser.add_argument('--num-val', type=int, default=50, help='val images per domain')
    parser.add_argument('--target-num-train', type=int, default=None,
                        help='train images of the target domain (default: --num-train)')
    parser.add_argument('--image-size', type=int, default=128, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bars')
    return parser.parse_args(argv)


def summarize(ann_file: str) -> str:
    """One block per json: image count and instances per class."""
    with open(ann_file, encoding='utf-8') as f:
        coco = json.load(f)
    name_of = {c['id']: c['name'] for c in coco['categories']}
    counts = Counter(name_of[a['category_id']] for a in coco['annotations'])
    lines = [f'{ann_file}: {len(coco["images"])} images, {len(coco["annotations"])} instances']
    lines += [f'  {name_of[c["id"]]:<10} {counts.get(name_of[c["id"]], 0):>6}'
              for c in coco['categories']]
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> Dict[str, Dict[str, str]]:
    args = parse_args(argv)
    for flag in ('num_train', 'num_val', 'image_size'):
        if getattr(args, flag) < 1:
            sys.exit(f'--{flag.replace("_", "-")} must be >= 1, got {getattr(args, flag)}')
    paths = generate_shapes_benchmark(
        args.out, num_train=args.num_train, num_val=args.num_val, image_size=args.image_size,
        seed=args.seed, target_num_train=args.target_num_train, progress=not args.no_progress)
    for domain in paths.values():
        for ann_file in domain.values():
            print(summarize(ann_file))
    print(f'images are in the folder next to each json (e.g. '
          f'{osp.join(args.out, "source", "train")}/)')
    return paths


if __name__ == '__main__':
    main()
