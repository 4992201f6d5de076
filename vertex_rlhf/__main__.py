import sys

from vertex_rlhf.cli import main

sys.exit(main())
