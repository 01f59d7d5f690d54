"""Datasets of image files: :class:`ImageFolder` (classification) and
:class:`SegmentationFolder` (images with masks).

Files are decoded with Pillow (``pip install "tinynet[images]"``), lazily: building a
dataset lists the files and reads only their headers (format, size, mode), so a folder of
thousands of images is ready at once; each item decodes its file when the loader asks for
it. What can be checked from headers is checked up front, and every problem names the
file:

* a file that is not an image Pillow can read (and, when decoded, a truncated one);
* an empty class folder, or a folder without any class;
* an image without a mask (pairs are matched by file stem: ``images/cat1.jpg`` with
  ``masks/cat1.png``), an image and mask of different sizes;
* a mask value beyond ``num_classes`` (checked when the mask is decoded).

Nothing is skipped silently. With ``skip_bad=True`` every file is decoded once at
construction (to find truncated files and bad mask values too), the bad items are left
out, and each is reported through ``report`` (default: a line on standard error);
``skipped`` lists them.

Masks may be binary (values 0 and 255, or 0 and 1, read as classes 0 and 1), grayscale or
palette ("P" mode) PNGs whose values are class indices, or RGB images whose colours map to
classes through ``colors`` (colour k is class k).
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Sequence

from ..backend import numpy as np
from .dataset import Dataset

__all__ = ["ImageFolder", "SegmentationFolder", "BadImageError", "IMAGE_EXTENSIONS", "read_image"]

#: File name endings read as images (case-insensitive).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class BadImageError(ValueError):
    """A file of an image dataset cannot be used; ``path`` names it."""

    def __init__(self, path, message: str):
        super().__init__(f"{path}: {message}")
        self.path = os.fspath(path)


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("tinynet.data image folders need Pillow: pip install \"tinynet[images]\" "
                          "(or pip install Pillow)") from None
    return Image


def _header(path):
    """(width, height, mode) from the file's header, without decoding the pixels."""
    Image = _pillow()
    try:
        with Image.open(path) as img:
            return img.size[0], img.size[1], img.mode
    except FileNotFoundError:
        raise BadImageError(path, "no such file") from None
    except Exception as e:  # noqa: BLE001 - Pillow raises several types for unreadable files
        raise BadImageError(path, f"not a readable image ({type(e).__name__}: {e})") from None


def read_image(path, mode: str | None = "RGB"):
    """Decodes ``path`` into a uint8 array (C, H, W) (``mode`` "RGB": 3 channels, "L": 1;
    None keeps the file's own mode, and a 2-D result for single-band images)."""
    Image = _pillow()
    try:
        with Image.open(path) as img:
            img.load()
            if mode is not None and img.mode != mode:
                img = img.convert(mode)
            arr = np.asarray(img)
    except FileNotFoundError:
        raise BadImageError(path, "no such file") from None
    except Exception as e:  # noqa: BLE001
        what = "truncated or corrupt image" if "truncat" in str(e).lower() else "cannot decode image"
        raise BadImageError(path, f"{what} ({type(e).__name__}: {e})") from None
    if mode is None:
        return arr
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1).copy()


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def _report_default(message: str) -> None:
    print(f"skipped {message}", file=sys.stderr)


class ImageFolder(Dataset):
    """Images in one subfolder per class: ``root/<class>/<file>.png|.jpg``.

    Classes are the subfolder names in sorted order (``classes``; ``class_to_idx`` maps a
    name to its index, as in torchvision). An item is ``(image, label)``: the image a uint8
    array (C, H, W) in ``mode`` ("RGB" by default, "L" for grayscale) passed through
    ``transform`` when given, the label an int.

    Parameters
    ----------
    root : str or os.PathLike
    transform : callable, optional
        Applied to each decoded image, e.g.
        ``Compose([Resize(32), ToFloat()])`` from :mod:`tinynet.data.transforms`.
    mode : str
        Pillow mode every image is converted to.
    skip_bad : bool
        Decode every file now and leave out the bad ones (reported), instead of raising.
    report : callable, optional
        Receives one line per skipped file (default: printed to standard error).
    """

    def __init__(self, root, transform: Callable | None = None, mode: str = "RGB", skip_bad: bool = False,
                 report: Callable | None = None):
        self.root, self.transform, self.mode = os.fspath(root), transform, mode
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"ImageFolder: no such directory: {self.root}")
        self.classes = sorted(d for d in os.listdir(self.root)
                              if os.path.isdir(os.path.join(self.root, d)) and not d.startswith("."))
        if not self.classes:
            raise ValueError(f"ImageFolder: {self.root} has no class subfolders (expected "
                             f"{self.root}/<class name>/<image files>)")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.skipped: list = []
        report = report or _report_default
        samples = []
        for c in self.classes:
            folder = os.path.join(self.root, c)
            files = sorted(f for f in os.listdir(folder) if _is_image(f))
            if not files:
                raise ValueError(f"ImageFolder: class folder {folder} holds no images "
                                 f"({', '.join(IMAGE_EXTENSIONS)})")
            for f in files:
                path = os.path.join(folder, f)
                try:
                    _header(path)
                    if skip_bad:
                        read_image(path, self.mode)
                except BadImageError as e:
                    if not skip_bad:
                        raise
                    self.skipped.append(path)
                    report(str(e))
                    continue
                samples.append((path, self.class_to_idx[c]))
        if not samples:
            raise ValueError(f"ImageFolder: no usable images under {self.root}")
        self.samples = samples
        self.targets = [label for _, label in samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        image = read_image(path, self.mode)
        if self.transform is not None:
            image = self.transform(image)
            image = getattr(image, "data", image)
        return image, label


class SegmentationFolder(Dataset):
    """Images and their masks in two folders, paired by file stem.

    An item is ``(image, mask)``: the image a uint8 array (C, H, W) in ``mode``, the mask
    an int64 array (H, W) of class indices, both passed through ``transform`` (a pair
    transform from :mod:`tinynet.data.paired_transforms`) when given.

    Parameters
    ----------
    images, masks : str or os.PathLike
        Folders of image files; ``masks/<stem>.*`` is the mask of ``images/<stem>.*``.
    transform : callable, optional
        ``(image, mask) -> (image, mask)``.
    num_classes : int, optional
        Mask values must lie in ``[0, num_classes)``; checked per mask as it is decoded.
    colors : sequence of (r, g, b), optional
        For RGB masks: colour k marks class k. A pixel of another colour is an error.
    mode : str
        Pillow mode of the images ("RGB" or "L").
    skip_bad, report
        As in :class:`ImageFolder`.
    """

    def __init__(self, images, masks, transform: Callable | None = None, num_classes: int | None = None,
                 colors: Sequence | None = None, mode: str = "RGB", skip_bad: bool = False,
                 report: Callable | None = None):
        self.images_dir, self.masks_dir = os.fspath(images), os.fspath(masks)
        self.transform, self.num_classes, self.mode = transform, num_classes, mode
        self.colors = None if colors is None else np.asarray(colors, dtype=np.int64).reshape(-1, 3)
        for what, d in (("images", self.images_dir), ("masks", self.masks_dir)):
            if not os.path.isdir(d):
                raise FileNotFoundError(f"SegmentationFolder: {what} directory {d} does not exist")
        image_files = sorted(f for f in os.listdir(self.images_dir) if _is_image(f))
        if not image_files:
            raise ValueError(f"SegmentationFolder: {self.images_dir} holds no images")
        masks_by_stem: dict = {}
        for f in sorted(os.listdir(self.masks_dir)):
            if _is_image(f):
                masks_by_stem.setdefault(os.path.splitext(f)[0], f)
        self.skipped: list = []
        report = report or _report_default
        pairs = []
        for f in image_files:
            image_path = os.path.join(self.images_dir, f)
            try:
                mask_name = masks_by_stem.get(os.path.splitext(f)[0])
                if mask_name is None:
                    raise BadImageError(image_path, f"no mask for this image in {self.masks_dir} "
                                                    f"(masks are matched by file name without extension)")
                mask_path = os.path.join(self.masks_dir, mask_name)
                iw, ih, _ = _header(image_path)
                mw, mh, _ = _header(mask_path)
                if (iw, ih) != (mw, mh):
                    raise BadImageError(image_path, f"image is {iw}x{ih} but its mask {mask_path} is {mw}x{mh}")
                if skip_bad:
                    read_image(image_path, self.mode)
                    self._read_mask(mask_path)
            except BadImageError as e:
                if not skip_bad:
                    raise
                self.skipped.append(e.path)
                report(str(e))
                continue
            pairs.append((image_path, mask_path))
        if not pairs:
            raise ValueError(f"SegmentationFolder: no usable image/mask pairs in {self.images_dir}")
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def _read_mask(self, path):
        raw = read_image(path, mode=None)
        if raw.ndim == 3 and raw.shape[-1] == 2:     # grey + alpha: the grey values
            raw = raw[..., 0]
        if raw.ndim == 3:                            # colour masks: RGB(A) -> class per colour
            rgb = raw[..., :3].astype(np.int64)
            if self.colors is None:
                if (rgb == rgb[..., :1]).all():      # grey stored as RGB
                    raw = rgb[..., 0]
                else:
                    raise BadImageError(path, "mask is a colour image; give colors=[(r, g, b), ...] "
                                              "(colour k is class k) or store class indices")
            else:
                code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
                palette = (self.colors[:, 0] << 16) | (self.colors[:, 1] << 8) | self.colors[:, 2]
                match = code[..., None] == palette
                if not match.any(axis=-1).all():
                    y, x = np.argwhere(~match.any(axis=-1))[0]
                    raise BadImageError(path, f"pixel ({y}, {x}) has colour {tuple(rgb[y, x].tolist())}, "
                                              f"which is none of the {len(palette)} class colours")
                raw = match.argmax(axis=-1)
        mask = raw.astype(np.int64)
        values = np.unique(mask)
        if values.size and values.max() == 255 and set(values.tolist()) <= {0, 255}:
            mask = mask // 255                       # a binary mask stored as 0 / 255
        if self.num_classes is not None and mask.size and mask.max() >= self.num_classes:
            bad = int(mask.max())
            y, x = np.argwhere(mask == bad)[0]
            raise BadImageError(path, f"class index {bad} at pixel ({y}, {x}) is beyond num_classes="
                                      f"{self.num_classes} (values must be 0..{self.num_classes - 1})")
        return mask

    def __getitem__(self, index):
        image_path, mask_path = self.pairs[index]
        image, mask = read_image(image_path, self.mode), self._read_mask(mask_path)
        if self.transform is not None:
            image, mask = self.transform((image, mask))
        return image, mask
