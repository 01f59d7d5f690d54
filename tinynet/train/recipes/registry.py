"""The recipe registry: what ``tinynet train NAME`` can build.

A recipe is a function ``build(options) -> Recipe`` registered under a name with its
defaults (epochs, batch size, learning rate, one line for ``--help``) and the command-line
options it reads. ``options`` is a dict holding at least ``batch_size`` and ``seed``, plus
those options. Adding a recipe is one decorated function in a module of this package and
one import line in ``recipes/__init__.py``::

    @register("mlp", about="an MLP on the digits", epochs=10, batch_size=32, lr=1e-3)
    def mlp(options):
        model, config = build_model("SimpleCNN", channels=(4, 8))
        ...
        return Recipe("mlp", "classification", model, train_loader, val_loader, test_loader,
                      model_config=config)
"""
from __future__ import annotations

from typing import Callable, NamedTuple

__all__ = ["Recipe", "RecipeSpec", "RECIPES", "register", "build_recipe", "build_model"]


class Recipe:
    """A model with its data: what one ``tinynet train NAME`` run trains.

    ``task`` names an entry of :data:`tinynet.train.TASKS` (its loss and metrics);
    ``model_config`` is ``{"name": ..., "kwargs": {...}}``, the :mod:`tinynet.models`
    constructor and its arguments, which checkpoints record so that
    :func:`tinynet.utils.load_model` can rebuild the model; ``plot(model, out_dir, device)``
    (optional) writes the recipe's own figures for ``--plot`` and returns their paths.
    ``input_shape`` is one sample's shape, ``class_names`` the label of each output class,
    ``preprocess`` how ``tinynet predict`` turns an input file into a sample (Pillow
    ``mode``, ``size``, ``scale``, ``layout``), and ``test_name`` says whether the final
    figure comes from a "test" set or, lacking one, from the "validation" set.
    """

    def __init__(self, name, task, model, train_loader, val_loader, test_loader, sample_batch=None,
                 model_config: dict | None = None, plot: Callable | None = None, input_shape=None,
                 class_names=None, preprocess: dict | None = None, test_name: str = "test"):
        self.name, self.task, self.model = name, task, model
        self.train_loader, self.val_loader, self.test_loader = train_loader, val_loader, test_loader
        self.sample_batch = sample_batch
        self.model_config = model_config
        self.plot = plot
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.class_names = None if class_names is None else list(class_names)
        self.preprocess = preprocess
        self.test_name = test_name


class RecipeSpec(NamedTuple):
    """A registered recipe: its builder, defaults, the options it reads, and (optional)
    ``model(options) -> (model, model_config, input_shape)`` that builds only the model,
    without loading data (what ``tinynet summary NAME`` shows)."""
    name: str
    build: Callable
    about: str
    epochs: int
    batch_size: int
    lr: float
    options: tuple = ()
    model: Callable | None = None
    input_dtype: str | None = None      # of the dummy input ``tinynet summary`` feeds (ids: "int64")


#: name -> :class:`RecipeSpec`, in registration order.
RECIPES: dict = {}


def register(name: str, *, about: str, epochs: int, batch_size: int, lr: float, options: tuple = (),
             model: Callable | None = None, input_dtype: str | None = None):
    """Decorator: registers ``build(options) -> Recipe`` as the recipe ``name``.

    ``options`` names the command-line options the recipe reads (``data``, ``images``,
    ``masks``, ``size``, ``width``, ``classes``, ``val_split``, ``skip_bad``); giving another
    one to ``tinynet train NAME`` is an error. ``model`` builds the model alone (see
    :class:`RecipeSpec`).
    """
    def decorate(build):
        if name in RECIPES:
            raise ValueError(f"register: a recipe named {name!r} already exists")
        RECIPES[name] = RecipeSpec(name, build, about, epochs, batch_size, lr, tuple(options), model,
                                   input_dtype)
        return build
    return decorate


def build_model(name: str, **kwargs):
    """``tinynet.models.<name>(**kwargs)`` and the config a checkpoint records for it."""
    from ... import models
    return getattr(models, name)(**kwargs), {"name": name, "kwargs": kwargs}


def build_recipe(name: str, batch_size: int = 32, seed: int = 0, **options) -> Recipe:
    """Builds the recipe ``name`` (see :data:`RECIPES`) with its loaders.

    The random generators are seeded with ``seed`` first, so the same call builds the same
    model weights and data split.
    """
    from ... import manual_seed
    if name not in RECIPES:
        raise ValueError(f"build_recipe: unknown model {name!r}; choose from {', '.join(RECIPES)}")
    manual_seed(seed)
    return RECIPES[name].build(dict(options, batch_size=batch_size, seed=seed))
