"""``python -m robocell`` is the same as the ``robocell`` command."""

import sys

from robocell.cli.main import main

sys.exit(main())
