"""Juju below Juju: stage a charm, run its hooks and actions, back its hook tools with a store.

`model` (the store) and `hooktools` use only the standard library: the hook tools import this
package with the charm's base Python inside the hook's sandbox. Import `charm_stage` and
`dispatch` explicitly; they are host-side only.
"""
