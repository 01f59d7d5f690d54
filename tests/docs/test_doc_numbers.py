"""Numbers the tutorials state about ``tinynet train`` come from the code: if a recipe's
defaults change, the page that quotes them fails here until it is updated."""
from pathlib import Path

from tinynet.train import RECIPES
from tinynet.train.recipes import segmentation

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_train_cnn_page_quotes_the_cnn_recipe_epochs():
    text = (DOCS / "tutorials" / "train-cnn.md").read_text()
    assert f"{RECIPES['cnn'].epochs} epochs (what `tinynet train cnn` does)" in text


def test_unet_page_quotes_the_builtin_unet_run():
    text = " ".join((DOCS / "tutorials" / "unet-segmentation.md").read_text().split())
    s = segmentation.BUILTIN_SIZE
    assert (f"`tinynet train unet` trains on {segmentation.BUILTIN_TRAIN} images of {s}x{s} for "
            f"{RECIPES['unet'].epochs} epochs") in text


def test_seed_unet_page_quotes_the_seed_models_size():
    from tinynet.models import UNet
    text = (DOCS / "tutorials" / "unet-your-images.md").read_text()
    n = sum(p.numel() for p in UNet(3, 2, base_width=segmentation.SEED_WIDTH).parameters())
    assert f"{n:,} parameters" in text and f"--size {segmentation.SEED_SIZE}" in text
