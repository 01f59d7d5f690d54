"""Recipes: a model with its data, built by name for ``tinynet train NAME``.

See :mod:`tinynet.train.recipes.registry` for how to add one. Each module below registers
its recipes when imported; the import order is the order ``--help`` lists them in.
"""
from .registry import Recipe, RecipeSpec, RECIPES, register, build_recipe, build_model
from . import classification   # noqa: F401  cnn, resnet, lstm
from . import segmentation     # noqa: F401  unet
from . import sequences        # noqa: F401  seq2seq, charlm, convlstm

__all__ = ["Recipe", "RecipeSpec", "RECIPES", "register", "build_recipe", "build_model"]
