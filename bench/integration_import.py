"""Import cost of the rabbitmq, openfga, oauth and saml integrations and the packaged libraries.

Usage: python bench/integration_import.py [ROUNDS]

For each module: the median cumulative import time `python -X importtime` reports for it,
imported after `charm` (so ops and our own modules are already loaded, as in a hook). A hook
imports an integration module only when its endpoint has a relation; the packaged libraries
(`charmlibs-interfaces-openfga`, `-oauth`) are measured for comparison, when installed.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'lib'}"}
MODULES = [
    "integrations.rabbitmq",
    "integrations.openfga",
    "integrations.oauth",
    "integrations.saml",
    "charmlibs.interfaces.openfga",
    "charmlibs.interfaces.oauth",
]


def cumulative_us(module: str) -> int:
    """The cumulative import time of `module` (µs), imported right after `charm`."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import charm, {module}"],
        env=ENV,
        check=True,
        capture_output=True,
        text=True,
    )
    for line in result.stderr.splitlines():
        fields = [field.strip() for field in line.removeprefix("import time:").split("|")]
        if len(fields) == 3 and fields[2] == module:
            return int(fields[1])
    raise RuntimeError(f"{module} not in the importtime output")


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    print(f"rounds: {rounds}; cumulative import time after `import charm` (median, ms)")
    for module in MODULES:
        if module.startswith("charmlibs") and importlib.util.find_spec(module) is None:
            print(f"  {module:<30} not installed")
            continue
        times = [cumulative_us(module) for _ in range(rounds)]
        print(f"  {module:<30} {statistics.median(times) / 1000:7.1f}")


if __name__ == "__main__":
    main()
