"""``python -m geventio``: the ``geventio`` command line (see :mod:`geventio._cli`)."""

from __future__ import annotations

import sys

from geventio._cli import main

if __name__ == "__main__":
    sys.exit(main())
