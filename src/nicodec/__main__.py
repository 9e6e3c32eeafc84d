"""`python -m nicodec` (also what torchrun launches)."""

import sys

from nicodec.cli.main import main

sys.exit(main())
