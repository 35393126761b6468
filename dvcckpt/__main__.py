import sys

from dvcckpt.cli import main

sys.exit(main())
