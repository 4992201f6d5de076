"""``python -m vertex_rlhf.cli``: the ``rlhf`` command."""

import sys

from vertex_rlhf.cli.app import main

sys.exit(main())
