"""``python -m ivs_widgets.sandbox``: the same as the ``ivs-sandbox`` command."""

import sys

from ivs_widgets.cli import main

sys.exit(main())
