"""``python -m reformer.tasks.wmt14 sample DIR``: write the sample corpus (see
:func:`reformer.tasks.wmt14.sample.main`)."""

import sys

from reformer.tasks.wmt14.sample import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
