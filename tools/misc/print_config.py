"""Print a config with its _base_ files merged and the command-line overrides applied.

    python tools/misc/print_config.py CONFIG [--cfg-options k=v ...] [--save-path out.py]
"""
import argparse
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Print the fully resolved config')
    parser.add_argument('config', help='config file')
    parser.add_argument('--save-path', help='also write the resolved config here '
                        '(.py, .json, .yml or .yaml)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, as in tools/train.py')
    args = parser.parse_args(argv)
    if args.save_path is not None and \
            osp.splitext(args.save_path)[1] not in ('.py', '.json', '.yml', '.yaml'):
        parser.error(f'--save-path must end with .py, .json, .yml or .yaml, '
                     f'got {args.save_path!r}')
    return args


def main(argv: Optional[List[str]] = None) -> Config:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')
    if args.save_path is not None:
        cfg.dump(args.save_path)
        print(f'Saved the resolved config to {args.save_path}')
    return cfg


if __name__ == '__main__':
    main()
