"""``python -m repro.config use PROFILE | check [EXPERIMENT ...] | show EXPERIMENT``."""

import sys

from .cli import main

if __name__ == "__main__":  # importing the module (the docs, a test walk) runs nothing
    sys.exit(main())
