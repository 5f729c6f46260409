"""pdserving: PaddleOCR's Paddle Serving deployment, re-created on current Python and Paddle."""

import warnings

from pdserving.parent import tie_to_parent

# A server started by launcher.ServerProcess dies with its parent (docs/design.md §7).
tie_to_parent()

# Paddle warns at import that ccache is missing; that only matters for C++ extension builds, and
# it would be the first thing every user sees on stderr.
warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)

__version__ = "0.1.0"
