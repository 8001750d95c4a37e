"""`python -m juju_local`: the CLI behind `scripts/juju-local`.

`config` and `status` go to the deployment's controller when it runs one (`controller.py`);
everything else, and those too when no controller answers, runs here.
"""

import sys

from juju_local.controller_client import forward

code = forward(sys.argv[1:])
if code is None:
    from juju_local.cli import main

    code = main()
sys.exit(code)
