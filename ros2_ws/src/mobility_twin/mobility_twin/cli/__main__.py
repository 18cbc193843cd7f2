import sys

from mobility_twin.cli.main import main

sys.exit(main())
