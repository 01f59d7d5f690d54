"""Data pipeline: datasets, the batch loader, transforms, built-in data and file readers."""
from .dataset import Dataset, TensorDataset, Subset, random_split
from .loader import DataLoader, default_collate
from .distributed import DistributedSampler
from . import transforms
from .datasets import load_digits, make_shapes, make_sine, make_adding_problem
from .text import CharVocab, make_dates, make_additions
from .video import make_moving_digits
from .readers import read_mnist_idx, read_cifar10_batch, read_cifar10
from . import paired_transforms
from .images import ImageFolder, SegmentationFolder, BadImageError, read_image

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split", "DataLoader", "default_collate", "DistributedSampler",
           "transforms", "load_digits", "make_shapes", "make_sine", "make_adding_problem",
           "read_mnist_idx", "read_cifar10_batch", "read_cifar10",
           "paired_transforms", "ImageFolder", "SegmentationFolder", "BadImageError", "read_image",
           "CharVocab", "make_dates", "make_additions", "make_moving_digits"]
