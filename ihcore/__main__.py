"""``python -m ihcore``: the book's command line (:mod:`ihcore.book.cli`)."""

import sys

from ihcore.book.cli import main

sys.exit(main())
