"""Runs the benchmark suite: ``python benchmarks/run.py [--device cpu|cuda] [--quick]
[--only NAMES] [--json FILE] [--markdown FILE] [--plot FILE] [--threads N]``.

The runner itself is ``tinynet.bench`` (so that ``tinynet bench`` runs the same code);
this script only makes the source tree importable and hands over the arguments.
See benchmarks/README.md for the method.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tinynet.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
