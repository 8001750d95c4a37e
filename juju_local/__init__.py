"""juju-local: Juju's job on one machine, with everything below Juju real.

The model store (`model`) and the hook tools (`hooktools`) use only the standard library: the
hook tools import this package with the charm's base Python inside the hook's sandbox, so this
file imports nothing. The rest is host-side: staging (`charm_stage`), dispatch (`dispatch`), the
workload container with its real Pebble (`workload_container`), the related services
(`prometheus`, `loki_receiver`), one deployment (`deployment`) and the CLI (`cli`).
"""
