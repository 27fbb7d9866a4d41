import sys

from reasongym.cli import main

sys.exit(main())
