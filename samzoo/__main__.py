import sys

from samzoo.cli.main import main

sys.exit(main())
