"""Synthetic "shapes" instance-segmentation datasets in COCO format: the embedded demo data.

Two domains share part of their class list, so that a CPU demo can show that fine-tuning from
a source-pretrained detector beats training from scratch, and that copying the head rows of
classes shared by name (or synonym) beats plain fine-tuning:

- ``source``: :data:`SOURCE_CLASSES`, smooth backgrounds (gradients, stripes, colour blobs),
  saturated object colours, larger objects.
- ``target``: :data:`TARGET_CLASSES` = 3 classes shared by name with the source, ``'box'``
  (the source's ``'square'`` under another name, see :data:`SHAPES_SYNONYMS`) and
  ``'pentagon'`` (new); busier backgrounds (checkerboards, dots, grain), muted colours,
  smaller objects.

Conventions:

- A class is drawn as the shape family of its name, or of ``SHAPES_SYNONYMS[name]``.
  Object colour is drawn independently of the class, so only the shape tells classes apart.
- Later objects are drawn over earlier ones; a placement is retried when it would hide more
  than ``max_occlusion`` of an earlier object. Each annotation describes the *visible*
  region: ``segmentation`` polygons (RLE for regions with holes, e.g. rings), ``bbox`` tight
  around that region, ``area`` its pixel count, ``iscrowd`` 0.
- Output of ``generate_shapes_dataset(out_dir, ..., split_name='train')``:
  ``out_dir/train.json`` and ``out_dir/train/000000.png`` ... (BGR PNG, ``file_name`` is
  relative to the image folder). An mmft/mmdet config reads it with
  ``data_root=out_dir, ann_file='train.json', data_prefix=dict(img='train/')``.
- Deterministic: image ``i`` is drawn from a generator seeded by
  ``(seed, domain, split_name, i)``, PNGs and json (sorted keys) are byte-identical for the
  same arguments.
"""
import os
import os.path as osp
import zlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from .coco_writer import CocoWriter, bbox_from_mask, mask_to_segmentation

SOURCE_CLASSES = ('circle', 'square', 'triangle', 'star', 'cross', 'ring', 'hexagon', 'ellipse',
                  'diamond', 'heart')
TARGET_CLASSES = ('circle', 'triangle', 'star', 'box', 'pentagon')
# target name -> source name of the same shape; the class-aware head transfer uses this map
SHAPES_SYNONYMS = {'box': 'square'}

# ---------------------------------------------------------------------------------------------
# Shape families. Each returns (outline polygons, hole polygons) in a unit frame: centred at
# the origin, extent within [-1, 1] on both axes, y pointing down.
# ---------------------------------------------------------------------------------------------
Polygon = np.ndarray  # (K, 2) float
ShapeFn = Callable[[], Tuple[List[Polygon], List[Polygon]]]


def _regular(n: int, radius: float = 1.0, phase: float = -np.pi / 2) -> Polygon:
    t = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)


def _ellipse(rx: float, ry: float, cx: float = 0.0, n: int = 64) -> Polygon:
    t = 2 * np.pi * np.arange(n) / n
    return np.stack([cx + rx * np.cos(t), ry * np.sin(t)], axis=1)


def _star(points: int = 5, inner: float = 0.42) -> Polygon:
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    t = -np.pi / 2 + np.pi * np.arange(2 * points) / points
    return np.stack([radii * np.cos(t), radii * np.sin(t)], axis=1)


def _cross(half_width: float = 0.3) -> Polygon:
    a, b = half_width, 1.0
    return np.array([[-a, -b], [a, -b], [a, -a], [b, -a], [b, a], [a, a], [a, b], [-a, b],
                     [-a, a], [-b, a], [-b, -a], [-a, -a]])


def _heart(n: int = 64) -> Polygon:
    t = 2 * np.pi * np.arange(n) / n
    x = 16 * np.sin(t)**3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    pts = np.stack([x, y], axis=1)
    pts -= (pts.max(axis=0) + pts.min(axis=0)) / 2
    return pts / np.abs(pts).max()


def _arrow() -> Polygon:
    return np.array([[-1.0, -0.25], [0.15, -0.25], [0.15, -0.7], [1.0, 0.0], [0.15, 0.7],
                     [0.15, 0.25], [-1.0, 0.25]])


SHAPE_FAMILIES: Dict[str, ShapeFn] = {
    'circle': lambda: ([_ellipse(1.0, 1.0)], []),
    'ellipse': lambda: ([_ellipse(1.0, 0.5)], []),
    'square': lambda: ([_regular(4, np.sqrt(2), np.pi / 4)], []),
    # a rhombus with unequal diagonals, so that no rotation turns a square into it
    'diamond': lambda: ([np.array([[0.0, -1.0], [0.55, 0.0], [0.0, 1.0], [-0.55, 0.0]])], []),
    'triangle': lambda: ([_regular(3)], []),
    'pentagon': lambda: ([_regular(5)], []),
    'hexagon': lambda: ([_regular(6)], []),
    'star': lambda: ([_star()], []),
    'cross': lambda: ([_cross()], []),
    'heart': lambda: ([_heart()], []),
    'ring': lambda: ([_ellipse(1.0, 1.0)], [_ellipse(0.55, 0.55)]),
    'crescent': lambda: ([_ellipse(1.0, 1.0)], [_ellipse(0.85, 0.85, cx=0.55)]),
    'arrow': lambda: ([_arrow()], []),
}


def shape_of(class_name: str) -> str:
    """Shape family drawn for a class name (the name itself or its synonym)."""
    shape = SHAPES_SYNONYMS.get(class_name, class_name)
    if shape not in SHAPE_FAMILIES:
        raise ValueError(f'no shape family for class {class_name!r}; use one of '
                         f'{sorted(SHAPE_FAMILIES)} or a synonym in {SHAPES_SYNONYMS}')
    return shape


# ---------------------------------------------------------------------------------------------
# Domains
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DomainStyle:
    """How a domain looks. Sizes are fractions of the image side (object diameter)."""
    backgrounds: Tuple[str, ...]
    size_range: Tuple[float, float]
    saturation_range: Tuple[float, float]
    value_range: Tuple[float, float]
    background_value_range: Tuple[float, float]
    max_occlusion: float


DOMAINS: Dict[str, DomainStyle] = {
    'source': DomainStyle(backgrounds=('gradient', 'stripes', 'blobs'), size_range=(0.15, 0.47),
                          saturation_range=(0.55, 1.0), value_range=(0.55, 1.0),
                          background_value_range=(0.3, 0.8), max_occlusion=0.35),
    'target': DomainStyle(backgrounds=('checker', 'dots', 'grain'), size_range=(0.12, 0.38),
                          saturation_range=(0.15, 0.6), value_range=(0.35, 0.95),
                          background_value_range=(0.15, 0.6), max_occlusion=0.45),
}


def _hsv_to_bgr(h: float, s: float, v: float) -> np.ndarray:
    hsv = np.array([[[h * 180.0, s * 255.0, v * 255.0]]], dtype=np.float32)
    hsv = np.clip(hsv, 0, [179, 255, 255]).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _random_colour(rng: np.random.Generator, sat: Tuple[float, float],
                   val: Tuple[float, float]) -> np.ndarray:
    return _hsv_to_bgr(rng.random(), rng.uniform(*sat), rng.uniform(*val))


def _background(rng: np.random.Generator, size: int, style: DomainStyle) -> np.ndarray:
    """A textured (H, W, 3) float32 BGR background of one of the domain's kinds."""
    kind = style.backgrounds[rng.integers(len(style.backgrounds))]
    bg_colour = lambda: _random_colour(rng, (0.0, 0.8), style.background_value_range)  # noqa
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if kind == 'gradient':
        angle = rng.uniform(0, 2 * np.pi)
        t = ((xx * np.cos(angle) + yy * np.sin(angle)) / size + 1) / 2
        t = np.clip(t, 0, 1)[..., None]
        img = (1 - t) * bg_colour() + t * bg_colour()
        noise = 10.0
    elif kind == 'stripes':
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(0.05, 0.16) * size
        t = (np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period) + 1) / 2
        img = (1 - t[..., None]) * bg_colour() + t[..., None] * bg_colour()
        noise = 6.0
    elif kind == 'blobs':
        cells = int(rng.integers(3, 7))
        grid = np.stack([bg_colour() for _ in range(cells * cells)]).reshape(cells, cells, 3)
        img = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
        noise = 8.0
    elif kind == 'checker':
        cell = max(2, int(rng.uniform(0.04, 0.12) * size))
        t = (((xx // cell) + (yy // cell)) % 2)[..., None]
        img = (1 - t) * bg_colour() + t * bg_colour()
        img = cv2.GaussianBlur(img, (3, 3), 0)
        noise = 12.0
    elif kind == 'dots':
        img = np.empty((size, size, 3), np.float32)
        img[:] = bg_colour()
        n_dots = int(rng.integers(20, 60))
        centres = rng.integers(0, size, (n_dots, 2))
        radii = rng.integers(1, max(2, size // 24) + 1, n_dots)
        for (cx, cy), r in zip(centres, radii):
            cv2.circle(img, (int(cx), int(cy)), int(r), bg_colour().tolist(), -1)
        noise = 10.0
    elif kind == 'grain':
        img = np.empty((size, size, 3), np.float32)
        img[:] = bg_colour()
        low = cv2.resize(rng.normal(0, 25, (4, 4, 1)).astype(np.float32), (size, size),
                         interpolation=cv2.INTER_CUBIC)
        img += low[..., None]
        noise = 28.0
    else:
        raise ValueError(f'unknown background kind {kind!r}')
    return img + rng.normal(0, noise, img.shape).astype(np.float32)


def _rasterise(polygons: List[Polygon], size: int) -> np.ndarray:
    """(size, size) uint8 mask of the polygons' union, with 1/16 pixel vertex precision."""
    mask = np.zeros((size, size), np.uint8)
    pts = [np.round(p * 16).astype(np.int32) for p in polygons]
    cv2.fillPoly(mask, pts, 1, lineType=cv2.LINE_8, shift=4)
    return mask


def _render_shape(rng: np.random.Generator, shape: str, size: int,
                  style: DomainStyle) -> Optional[np.ndarray]:
    """Full (unoccluded) mask of one randomly sized, rotated and placed shape."""
    outlines, holes = SHAPE_FAMILIES[shape]()
    diameter = rng.uniform(*style.size_range) * size
    radius = diameter / 2
    # mild aspect jitter keeps every family recognisable (ellipse stays at ~0.5)
    aspect = rng.uniform(0.9, 1.1)
    scale = np.array([radius * aspect, radius / aspect])
    angle = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    extent = radius * 1.1
    centre = rng.uniform(extent, size - extent, 2) if size > 2 * extent else np.full(2, size / 2)
    to_image = lambda p: (p * scale) @ rot.T + centre  # noqa
    mask = _rasterise([to_image(p) for p in outlines], size)
    if holes:
        mask &= 1 - _rasterise([to_image(p) for p in holes], size)
    return mask if mask.any() else None


def _paint(rng: np.random.Generator, img: np.ndarray, mask: np.ndarray,
           style: DomainStyle) -> None:
    """Paint an object with a colour that contrasts with what lies under it, shading, noise."""
    under = img[mask.astype(bool)].mean(axis=0)
    candidates = [_random_colour(rng, style.saturation_range, style.value_range)
                  for _ in range(4)]
    colour = max(candidates, key=lambda c: float(np.abs(c - under).sum()))
    ys, xs = np.nonzero(mask)
    # a linear shading across the object, so objects are not flat colour
    angle = rng.uniform(0, 2 * np.pi)
    t = (xs - xs.mean()) * np.cos(angle) + (ys - ys.mean()) * np.sin(angle)
    t = t / (np.abs(t).max() + 1e-6)
    shade = 1.0 + rng.uniform(0.0, 0.25) * t
    pixels = colour[None, :] * shade[:, None] + rng.normal(0, 7, (len(xs), 3))
    img[ys, xs] = pixels
    if rng.random() < 0.3:  # an outline in a darker tone
        inner = cv2.erode(mask, np.ones((3, 3), np.uint8))
        by, bx = np.nonzero(mask & (1 - inner))
        img[by, bx] = colour * 0.45


def _draw_image(rng: np.random.Generator, classes: Sequence[str], size: int, style: DomainStyle,
                min_objects: int, max_objects: int,
                max_tries: int = 20) -> Tuple[np.ndarray, List[Tuple[str, np.ndarray]]]:
    """One image and its (class name, visible mask) instances."""
    img = _background(rng, size, style)
    num = int(rng.integers(min_objects, max_objects + 1))
    names: List[str] = []
    full: List[np.ndarray] = []
    visible: List[np.ndarray] = []
    for _ in range(num):
        name = classes[rng.integers(len(classes))]
        for _ in range(max_tries):
            mask = _render_shape(rng, shape_of(name), size, style)
            if mask is None:
                continue
            new_visible = [v & (1 - mask) for v in visible]
            # keep every earlier object mostly visible: occlusion, not replacement
            if all(nv.sum() >= (1 - style.max_occlusion) * f.sum()
                   for nv, f in zip(new_visible, full)):
                break
        else:
            continue
        _paint(rng, img, mask, style)
        names.append(name)
        full.append(mask)
        visible = new_visible + [mask.copy()]
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return img, list(zip(names, visible))


def _split_seed(seed: int, domain: str, split_name: str, index: int) -> List[int]:
    # crc32 rather than hash(): str hashes change between interpreter runs
    return [int(seed), list(DOMAINS).index(domain), zlib.crc32(split_name.encode()), int(index)]


def generate_shapes_dataset(out_dir: str,
                            classes: Sequence[str] = SOURCE_CLASSES,
                            num_images: int = 200,
                            image_size: int = 128,
                            seed: int = 0,
                            domain: str = 'source',
                            split_name: str = 'train',
                            min_objects: int = 1,
                            max_objects: int = 4,
                            progress: bool = True) -> str:
    """Render ``num_images`` images of shapes and write a COCO instance json for them.

    Args:
        out_dir: Folder that receives ``{split_name}.json`` and ``{split_name}/*.png``.
        classes: Class names, each a shape family or a key of :data:`SHAPES_SYNONYMS`.
        num_images: Number of images.
        image_size: Side of the square images in pixels (>= 32).
        seed: Random seed; same arguments give byte-identical output.
        domain: ``'source'`` or ``'target'`` (background, colour and size style).
        split_name: Name of the json and of the image folder.
        min_objects: Fewest objects attempted per image (>= 1).
        max_objects: Most objects per image.
        progress: Show a tqdm progress bar.

    Returns:
        Path of the written annotation json.
    """
    if domain not in DOMAINS:
        raise ValueError(f'domain={domain!r} is unknown; use one of {list(DOMAINS)}')
    if not classes:
        raise ValueError('classes is empty; give at least one class name, e.g. SOURCE_CLASSES')
    for name in classes:
        shape_of(name)
    if image_size < 32:
        raise ValueError(f'image_size={image_size} is too small for detectable shapes; use >= 32')
    if not 1 <= min_objects <= max_objects:
        raise ValueError(f'need 1 <= min_objects <= max_objects, got min_objects={min_objects}, '
                         f'max_objects={max_objects}')
    if num_images < 0:
        raise ValueError(f'num_images={num_images} must be >= 0')
    style = DOMAINS[domain]
    img_dir = osp.join(out_dir, split_name)
    os.makedirs(img_dir, exist_ok=True)
    writer = CocoWriter(classes, supercategory='shape')
    writer.info = dict(description='mmft synthetic shapes', domain=domain, seed=int(seed),
                       split=split_name, image_size=int(image_size),
                       shapes={name: shape_of(name) for name in classes})
    for index in tqdm(range(num_images), desc=f'shapes {domain}/{split_name}',
                      disable=not progress):
        rng = np.random.default_rng(_split_seed(seed, domain, split_name, index))
        img, instances = _draw_image(rng, classes, image_size, style, min_objects, max_objects)
        file_name = f'{index:06d}.png'
        ok, png = cv2.imencode('.png', img)
        if not ok:
            raise RuntimeError(f'OpenCV failed to encode {file_name} as PNG')
        with open(osp.join(img_dir, file_name), 'wb') as f:
            f.write(png.tobytes())
        image_id = writer.add_image(file_name, image_size, image_size)
        for name, mask in instances:
            writer.add_annotation(image_id, name, bbox_from_mask(mask), float(mask.sum()),
                                  segmentation=mask_to_segmentation(mask), iscrowd=0)
    ann_file = osp.join(out_dir, f'{split_name}.json')
    return writer.dump(ann_file)


def generate_shapes_benchmark(root: str,
                              num_train: int = 200,
                              num_val: int = 50,
                              image_size: int = 128,
                              seed: int = 0,
                              target_num_train: Optional[int] = None,
                              source_classes: Sequence[str] = SOURCE_CLASSES,
                              target_classes: Sequence[str] = TARGET_CLASSES,
                              progress: bool = True) -> Dict[str, Dict[str, str]]:
    """Write the source and target domains, each with a train and a val split.

    Layout: ``root/{source,target}/{train,val}.json`` and ``root/{source,target}/{train,val}/``.

    Args:
        target_num_train: Training images of the target domain (default ``num_train``); a
            smaller target set is where pretraining on the source pays off.

    Returns:
        ``{'source': {'train': json, 'val': json}, 'target': {'train': json, 'val': json}}``.
    """
    sizes = dict(source=dict(train=num_train, val=num_val),
                 target=dict(train=num_train if target_num_train is None else target_num_train,
                             val=num_val))
    classes = dict(source=source_classes, target=target_classes)
    paths: Dict[str, Dict[str, str]] = {}
    for domain in ('source', 'target'):
        paths[domain] = {}
        for split in ('train', 'val'):
            paths[domain][split] = generate_shapes_dataset(
                osp.join(root, domain), classes=classes[domain],
                num_images=sizes[domain][split], image_size=image_size, seed=seed, domain=domain,
                split_name=split, progress=progress)
    return paths
