"""Image folders: PNG/JPEG files written to a temporary directory, decoded lazily; every bad
file is an error naming it, or with skip_bad a reported skip."""
import os

import numpy as np
import pytest

import tinynet as tn
from tinynet.data import BadImageError, DataLoader, ImageFolder, SegmentationFolder, images
from tinynet.data import paired_transforms as PT
from tinynet.data.transforms import Compose, RandomResizedCrop, Resize, ToFloat

Image = pytest.importorskip("PIL.Image", reason="image folders need Pillow (the images extra)")


def _png(path, array, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode=mode).save(path)
    return path


def _classes(root, counts=(3, 2), size=(6, 5)):
    rng = np.random.default_rng(0)
    pixels = {}
    for c, n in zip(("cat", "dog"), counts):
        for i in range(n):
            arr = rng.integers(0, 256, (size[0], size[1], 3))
            _png(os.path.join(root, c, f"{i}.png"), arr)
            pixels[(c, i)] = arr
    return pixels


def test_image_folder_labels_by_sorted_subfolder_and_decodes_lazily(tmp_path, monkeypatch):
    pixels = _classes(tmp_path)
    _png(tmp_path / "dog" / "2.jpg", np.full((6, 5, 3), 200))
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    decoded = []
    real = images.read_image
    monkeypatch.setattr(images, "read_image", lambda p, mode="RGB": decoded.append(p) or real(p, mode))
    ds = ImageFolder(tmp_path)
    assert decoded == []                                   # construction reads headers only
    assert ds.classes == ["cat", "dog"] and ds.class_to_idx == {"cat": 0, "dog": 1}
    assert len(ds) == 6 and ds.targets == [0, 0, 0, 1, 1, 1]
    image, label = ds[4]
    assert decoded == [str(tmp_path / "dog" / "1.png")] and label == 1
    assert image.dtype == np.uint8 and image.shape == (3, 6, 5)
    np.testing.assert_array_equal(image, pixels[("dog", 1)].transpose(2, 0, 1))
    assert abs(int(ds[5][0].mean()) - 200) <= 2            # the JPEG, lossy
    gray = ImageFolder(tmp_path, mode="L", transform=Compose([Resize(4), ToFloat()]))
    x, y = next(iter(DataLoader(gray, batch_size=6)))
    assert x.shape == (6, 1, 4, 4) and x.dtype == np.float32 and y.numpy().tolist() == [0, 0, 0, 1, 1, 1]


def test_image_folder_errors_name_the_file(tmp_path):
    _classes(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"class folder .*empty holds no images"):
        ImageFolder(tmp_path)
    os.rmdir(tmp_path / "empty")
    (tmp_path / "cat" / "junk.png").write_bytes(b"this is not a PNG at all")
    with pytest.raises(BadImageError, match=r"junk\.png: not a readable image"):
        ImageFolder(tmp_path)
    os.remove(tmp_path / "cat" / "junk.png")
    good = (tmp_path / "dog" / "0.png").read_bytes()
    (tmp_path / "dog" / "cut.png").write_bytes(good[:len(good) // 2])      # header intact, pixels cut
    ds = ImageFolder(tmp_path)
    with pytest.raises(BadImageError, match=r"cut\.png: truncated or corrupt image"):
        ds[len(ds) - 1]
    with pytest.raises(FileNotFoundError, match="no such directory"):
        ImageFolder(tmp_path / "nowhere")


def test_skip_bad_leaves_out_and_reports_each_bad_file(tmp_path):
    _classes(tmp_path)
    good = (tmp_path / "dog" / "0.png").read_bytes()
    (tmp_path / "dog" / "cut.png").write_bytes(good[:len(good) // 2])
    (tmp_path / "cat" / "junk.png").write_bytes(b"nope")
    reported = []
    ds = ImageFolder(tmp_path, skip_bad=True, report=reported.append)
    assert len(ds) == 5 and sorted(os.path.basename(p) for p in ds.skipped) == ["cut.png", "junk.png"]
    assert len(reported) == 2 and any("cut.png: truncated" in r for r in reported)
    for i in range(len(ds)):
        ds[i]


def _seg(root, n=3, size=(8, 8), mask_values=(0, 255)):
    rng = np.random.default_rng(1)
    for i in range(n):
        _png(root / "images" / f"s{i}.jpg" if i == 0 else root / "images" / f"s{i}.png",
             rng.integers(0, 256, size + (3,)))
        _png(root / "masks" / f"s{i}.png", rng.choice(mask_values, size))


def test_segmentation_folder_pairs_by_stem_and_reads_binary_palette_and_colour_masks(tmp_path):
    _seg(tmp_path)
    ds = SegmentationFolder(tmp_path / "images", tmp_path / "masks", num_classes=2)
    assert len(ds) == 3 and os.path.basename(ds.pairs[0][1]) == "s0.png"
    image, mask = ds[1]
    raw = np.asarray(Image.open(tmp_path / "masks" / "s1.png"))
    assert image.shape == (3, 8, 8) and mask.dtype == np.int64
    np.testing.assert_array_equal(mask, raw // 255)                         # 0/255 -> classes 0/1
    labels = np.arange(16).reshape(4, 4) % 3
    pal = Image.fromarray(labels.astype(np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    (tmp_path / "pi").mkdir()
    (tmp_path / "pm").mkdir()
    _png(tmp_path / "pi" / "a.png", np.zeros((4, 4, 3)))
    pal.save(tmp_path / "pm" / "a.png")
    np.testing.assert_array_equal(SegmentationFolder(tmp_path / "pi", tmp_path / "pm", num_classes=3)[0][1], labels)
    colours = [(0, 0, 0), (255, 0, 0), (0, 0, 255)]
    _png(tmp_path / "pm" / "a.png", np.asarray(colours)[labels])
    ds = SegmentationFolder(tmp_path / "pi", tmp_path / "pm", colors=colours)
    np.testing.assert_array_equal(ds[0][1], labels)
    with pytest.raises(BadImageError, match="mask is a colour image; give colors"):
        SegmentationFolder(tmp_path / "pi", tmp_path / "pm")[0]


def test_segmentation_folder_errors_name_the_file(tmp_path):
    _seg(tmp_path)
    _png(tmp_path / "images" / "lonely.png", np.zeros((8, 8, 3)))
    with pytest.raises(BadImageError, match=r"lonely\.png: no mask for this image"):
        SegmentationFolder(tmp_path / "images", tmp_path / "masks")
    _png(tmp_path / "masks" / "lonely.png", np.zeros((8, 7)))
    with pytest.raises(BadImageError, match=r"lonely\.png: image is 8x8 but its mask .*lonely\.png is 7x8"):
        SegmentationFolder(tmp_path / "images", tmp_path / "masks")
    _png(tmp_path / "masks" / "lonely.png", np.full((8, 8), 3))
    ds = SegmentationFolder(tmp_path / "images", tmp_path / "masks", num_classes=2)
    with pytest.raises(BadImageError, match=r"lonely\.png: class index 3 at pixel \(0, 0\) is beyond num_classes=2"):
        ds[[os.path.basename(p) for p, _ in ds.pairs].index("lonely.png")]
    reported = []
    ds = SegmentationFolder(tmp_path / "images", tmp_path / "masks", num_classes=2, skip_bad=True,
                            report=reported.append)
    assert len(ds) == 3 and len(reported) == 1 and "class index 3" in reported[0]


def test_pair_transforms_move_image_and_mask_together():
    """Channel 0 of the image is 40 * mask, so any geometry applied to one and not the
    other, or differently, breaks the equality."""
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 3, (12, 12))
    image = np.stack([mask * 40, rng.integers(0, 256, (12, 12)), mask]).astype(np.uint8)
    t = PT.Compose([PT.RandomCrop(8), PT.RandomHorizontalFlip(), PT.RandomVerticalFlip(), PT.RandomRotation90()])
    tn.manual_seed(0)
    seen = set()
    for _ in range(30):
        out_image, out_mask = t((image, mask))
        assert out_image.shape == (3, 8, 8) and out_mask.shape == (8, 8)
        np.testing.assert_array_equal(out_image[0], out_mask * 40)
        seen.add(out_mask.tobytes())
    assert len(seen) > 10                                  # the choices do vary
    small_image, small_mask = PT.Resize(6)((image, mask))
    np.testing.assert_array_equal(small_mask, mask[::2, ::2])              # nearest keeps indices
    assert small_image.dtype == np.uint8 and small_image.shape == (3, 6, 6)
    _, target = PT.OneHot(3)((image, mask))
    np.testing.assert_array_equal(target.argmax(0), mask)
    assert target.dtype == np.float32 and target.sum() == 144
    norm, _ = PT.Normalize([10.0, 0, 0], [2.0, 1, 1])(PT.ToFloat()((image, mask)))
    np.testing.assert_allclose(norm[0], (mask * 40 - 10.0) / 2.0)
    with pytest.raises(ValueError, match="mask must be"):
        PT.Resize(4)((image, mask[:5]))


def test_resize_matches_pytorch_bilinear_and_nearest():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((2, 3, 7, 9)).astype(np.float32)
    for size in [(4, 5), (14, 20), (3, 11)]:
        ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode="bilinear", align_corners=False)
        np.testing.assert_allclose(Resize(size)(x).numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
        ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode="nearest")
        np.testing.assert_array_equal(images.np.asarray(PT.Resize(size)((x[0], x[0, 0]))[1]), ref.numpy()[0, 0])


def test_random_resized_crop_boxes_are_inside_and_full_box_is_resize():
    x = np.random.default_rng(0).random((4, 3, 10, 8)).astype(np.float32)
    full = RandomResizedCrop(5, scale=(1.0, 1.0), ratio=(0.8, 0.8))(x).numpy()
    np.testing.assert_allclose(full, Resize(5)(x).numpy(), rtol=1e-5, atol=1e-6)
    tn.manual_seed(3)
    a = RandomResizedCrop((6, 4), scale=(0.2, 0.5))(x).numpy()
    tn.manual_seed(3)
    b = RandomResizedCrop((6, 4), scale=(0.2, 0.5))(x).numpy()
    assert a.shape == (4, 3, 6, 4) and np.array_equal(a, b) and not np.array_equal(a[0], a[1])
    assert a.min() >= x.min() and a.max() <= x.max()
    with pytest.raises(ValueError, match="scale must be"):
        RandomResizedCrop(4, scale=(0.5, 0.1))
    with pytest.raises(ValueError, match="Resize: size must be"):
        Resize(0)


def test_a_subset_of_an_image_folder_is_read_item_by_item(tmp_path):
    from tinynet.data import Subset, TensorDataset
    _classes(tmp_path)
    folder_part = Subset(ImageFolder(tmp_path, transform=Resize(4)), [4, 0])
    assert not hasattr(folder_part, "take")       # the loader must not try the vectorised path
    x, y = next(iter(DataLoader(folder_part, batch_size=2)))
    assert x.shape == (2, 3, 4, 4) and y.numpy().tolist() == [1, 0]
    tensor_part = Subset(TensorDataset(np.arange(6.0), np.arange(6)), [5, 1])
    assert [t.numpy().tolist() for t in tensor_part.take(np.array([0, 1]))] == [[5.0, 1.0], [5, 1]]
