"""`python -m juju_local`: the CLI behind `scripts/juju-local`."""

import sys

from juju_local.cli import main

sys.exit(main())
