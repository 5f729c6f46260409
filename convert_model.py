"""Convert a Paddle inference model into Paddle Serving folders: see ``pdserving.convert``."""

import sys

from pdserving.convert import main

if __name__ == "__main__":
    sys.exit(main())
