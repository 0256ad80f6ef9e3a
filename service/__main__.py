"""`python -m service`: the command line (`service.server.run`)."""

import sys

from service.server.run import main

if __name__ == "__main__":
    sys.exit(main())
