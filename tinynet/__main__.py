"""``python -m tinynet [COMMAND ...]``: the ``tinynet`` command; with no arguments, the self-check."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["selfcheck"]))
