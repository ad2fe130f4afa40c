import sys

from robnas.cli import main

sys.exit(main())
