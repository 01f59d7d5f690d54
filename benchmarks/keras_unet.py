"""The seed's U-Net as Keras 3 code: a third library on the U-Net training step (issue 11).

The classic Keras U-Net (the one tinynet's ``UNet`` reproduces): input scaled by 1/255,
levels of 16-32-64-128-256 filters, two 3x3 ``Conv2D`` per level with ELU and He-normal
initialisation, ``Dropout`` 0.1/0.1/0.2/0.2/0.3 between them, 2x2 max-pooling, 2x2
stride-2 ``Conv2DTranspose`` up-convolutions, ``concatenate`` skips and a 1x1 sigmoid
head; with 3 input channels and 2 classes it has 1,941,122 parameters (checked).

One training step (forward, binary cross-entropy, backward, Adam) at batch 2, 128x128,
timed in this one process against tinynet's and PyTorch's steps from ``training.py``,
interleaved (``common.compare``). Keras runs on its JAX backend (``KERAS_BACKEND=jax``,
set here before the import; ``train_on_batch`` is jit-compiled during the warm-up), in
channels-last layout as Keras code is written. ``--threads 1`` also limits XLA to one
thread. Without Keras or JAX (``pip install -e ".[keras]"``) it prints why and exits 0.

    python benchmarks/keras_unet.py [--threads N] [--quick]
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402  (benchmark driver)

PARAMETERS = 1_941_122
FILTERS = (16, 32, 64, 128, 256)
DROPOUT = (0.1, 0.1, 0.2, 0.2, 0.3)


def import_keras(threads: int):
    """The ``keras`` module on the JAX backend, or None when Keras or JAX is missing."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    if threads == 1:
        os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                           "intra_op_parallelism_threads=1")
    try:
        import keras
    except ImportError:
        return None
    return keras


def keras_unet(keras, size=128, in_channels=3, num_classes=2, filters=FILTERS, dropout=DROPOUT):
    """The classic U-Net in Keras' functional API (channels last)."""
    L = keras.layers

    def block(x, f, p):
        x = L.Conv2D(f, 3, activation="elu", kernel_initializer="he_normal", padding="same")(x)
        x = L.Dropout(p)(x)
        return L.Conv2D(f, 3, activation="elu", kernel_initializer="he_normal", padding="same")(x)

    inputs = keras.Input((size, size, in_channels))
    x = L.Rescaling(1.0 / 255)(inputs)
    skips = []
    for level, (f, p) in enumerate(zip(filters, dropout)):
        x = block(x, f, p)
        if level < len(filters) - 1:
            skips.append(x)
            x = L.MaxPooling2D(2)(x)
    for f, p, skip in zip(filters[-2::-1], dropout[-2::-1], skips[::-1]):
        x = L.Conv2DTranspose(f, 2, strides=2, padding="same")(x)
        x = block(L.concatenate([x, skip]), f, p)
    outputs = L.Conv2D(num_classes, 1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def keras_step_fn(keras, shape, base_width=16):
    """``(model, step)`` for the Keras U-Net on training.py's data (moved to channels
    last); ``base_width`` scales the filters as ``UNet(base_width=...)`` does (the
    runner's ``--quick`` models are narrow)."""
    import training
    x, y = training.make_data("unet", shape)
    x, y = np.ascontiguousarray(x.transpose(0, 2, 3, 1)), np.ascontiguousarray(y.transpose(0, 2, 3, 1))
    keras.utils.set_random_seed(0)
    filters = tuple(base_width * 2 ** level for level in range(len(FILTERS)))
    model = keras_unet(keras, size=shape[2], in_channels=shape[1], filters=filters)
    if filters == FILTERS and shape[1] == 3:
        assert model.count_params() == PARAMETERS, model.count_params()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")

    def step():
        return float(model.train_on_batch(x, y))
    return model, step


def unavailable(device: str = "cpu") -> str | None:
    """Why the Keras reference cannot run here (None when it can)."""
    if str(device).startswith("cuda"):
        return "Keras runs on JAX's CPU backend only in these benchmarks"
    import common
    if not (common.module_installed("keras") and common.module_installed("jax")):
        return "Keras 3 with JAX is not installed (pip install -e '.[keras]')"
    return None


def run(quick: bool = False, threads: int = 1) -> list[dict]:
    """The U-Net training row with Keras beside tinynet and PyTorch (``training.run``'s)."""
    import common
    import training
    if common.load_reference("keras_unet", "Keras", unavailable(), lambda: import_keras(threads)) is None:
        return []
    return training.run(quick=quick, memory=False, references=("keras",), names=("unet",))


def main(argv=None) -> int:
    import common
    parser = common.standalone_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    keras = import_keras(args.threads)       # before anything else touches XLA
    info, threads = common.start_standalone(args)
    rows = run(quick=args.quick, threads=args.threads)
    if rows:
        print(f"Keras {keras.__version__} ({keras.backend.backend()} backend)")
        print(common.format_table(rows))
    common.write_json(args.json, info, threads, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
