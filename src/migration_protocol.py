"""Who runs the app's migration, when: a lease the leader hands out over a peer relation.

Protocol, over the `secret-storage` peer relation. Juju lets only the leader write the app
databag and each unit only its own unit databag; a hook's writes become visible to other units
when the hook ends, and each write wakes the other units with relation-changed.

    unit databag (each unit, its own)  `migration-want`    code id the unit waits to migrate
                                       `migration-result`  {code, ok, serial, retry}: its last run
    app databag (leader only)          `migration-lease`   {unit, code, serial, expires, failed}
                                       `migrated`          the last code ids migrated (JSON list)
                                       `migration-serial`  the last lease serial handed out
                                       `migration-retry`   bumped by the action: forget failures

1. A unit whose code C is *done* (C is in `migrated`, or some unit's result says C succeeded)
   starts its app and clears its want. Otherwise, if its own result says C failed under the
   current `migration-retry`, it stays Blocked and runs nothing: no retry loop.
2. Otherwise a non-leader writes `migration-want: C` and waits (Waiting: "waiting for migration
   on <holder>"). It runs the script only inside a hook that sees a lease naming itself and C,
   not failed, with `now + migration-timeout + 10 s <= expires`; it then writes its result (and
   clears its want) when the hook ends.
3. The leader, in every hook (`coordinate`): folds successful results into `migrated`; ends the
   lease when its holder published a result for that serial (success: lease gone; failure: the
   lease stays, marked failed, so others keep waiting on that unit), when the holder left the
   relation, or when `expires` has passed; and, when there is no lease, or only a failed one
   for another code, grants a new lease (next serial, `expires = now + 120 s + timeout + 10 s`)
   to the highest-ordinal unit wanting a code that is neither done nor the failed lease's code.
4. The leader migrates its own code without writing a lease first, in the same hook that finds
   no live lease (none, expired, or failed for another code); its result and, on failure, a
   failed lease in its own name are written when that hook ends.
5. `run-migrations` runs only on the leader and refuses while another unit holds a live lease.
   It bumps `migration-retry` (clearing every recorded failure and a failed lease), runs the
   leader's script and records the outcome as in 4. Units that had failed then want again.

No concurrency: at most one script runs at a time. Non-leaders run only under a lease, and the
leader (the single writer of the lease) hands out a new one only when the previous one is
over: its holder published a result for it (its run has ended: the result is written when the
running hook ends), left (its pod and processes are gone), or expired; a holder starts only
when its whole run, killed at `migration-timeout` (+ 10 s at worst), ends before `expires`, so an
expired lease has no run left. The leader runs its own script (hook or action) only when no
live lease exists, and grants nothing while its run lasts, because a unit runs one hook at a
time. A new leader inherits the lease from the app databag. Assumptions: pod clocks agree to
well within the 120 s grace, and Juju keeps one leader while its agent is alive.

No deadlock: every wait ends without anyone's help but the leader's and the holder's. A waiting
unit needs only the leader's grant, and the leader grants from its old pod as well as its new
one: during a rolling upgrade (highest ordinal first, the leader's pod last) the leader still
runs and answers each want with relation-changed, and runs its own migration itself when its
own pod is replaced. A holder that dies loses its lease on expiry (update-status wakes the
leader); a failed lease blocks only units of that same code, and ends with the action or new
code. A waiting unit does not add the charm's layer, so its pod has no failing ready check and
does not stall the StatefulSet rollout; Kubernetes can go on to replace the leader's pod, and
a new leader (Juju elects one when the old agent is gone) takes over the lease. Exactly one run
per upgrade: the first unit to get new code runs it under the lease; the others, waiting or
arriving later, find it done. Limitation: a leader still running a charm revision without
this protocol grants nothing, so units upgraded before it wait until its pod is replaced.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import pebble_io

GRACE = 120  # seconds a holder has to start its run after the grant
HISTORY = 16  # migrated code ids remembered


@dataclasses.dataclass(frozen=True)
class Lease:
    """The right to run the migration for `code`, held by `unit` until `expires`."""

    unit: str
    code: str
    serial: int
    expires: float
    failed: bool = False

    def live(self, now: float) -> bool:
        """Whether a run may still be going on under this lease."""
        return not self.failed and now <= self.expires


@dataclasses.dataclass(frozen=True)
class Result:
    """A unit's last run: for which code, how it went, under which lease and retry round."""

    code: str
    ok: bool
    serial: int | None
    retry: int


@dataclasses.dataclass(frozen=True)
class Board:
    """Everything the peer relation says about migrations."""

    lease: Lease | None = None
    migrated: tuple[str, ...] = ()
    serial: int = 0
    retry: int = 0
    wants: Mapping[str, str] = dataclasses.field(default_factory=dict)
    results: Mapping[str, Result] = dataclasses.field(default_factory=dict)

    def done(self, code: str) -> bool:
        """Whether the migration for `code` has succeeded somewhere."""
        return code in self.migrated or any(r.ok and r.code == code for r in self.results.values())

    def failed(self, unit: str, code: str) -> bool:
        """Whether `unit`'s own run for `code` failed in the current retry round."""
        result = self.results.get(unit)
        if result is None or result.ok:
            return False
        return result.code == code and result.retry == self.retry


def _ordinal(unit: str) -> int:
    return int(unit.rsplit("/", 1)[-1])


def _remember(migrated: tuple[str, ...], code: str) -> tuple[str, ...]:
    return migrated if code in migrated else (*migrated, code)[-HISTORY:]


def arbitrate(
    board: Board, *, leader: str, members: Iterable[str], now: float, timeout: int
) -> Board:
    """The leader's step 3: fold results in, end the lease if it is over, grant the next."""
    members = set(members)
    migrated = board.migrated
    for result in board.results.values():
        if result.ok:
            migrated = _remember(migrated, result.code)
    lease = board.lease
    if lease is not None:
        result = board.results.get(lease.unit)
        if lease.unit not in members:
            lease = None
        elif result is not None and result.serial == lease.serial and result.code == lease.code:
            lease = None if result.ok else dataclasses.replace(lease, failed=True)
        elif not lease.failed and now > lease.expires:
            lease = None
    serial = board.serial
    if lease is None or lease.failed:
        waiting = [
            (unit, code)
            for unit, code in board.wants.items()
            if unit in members
            and unit != leader
            and code not in migrated
            and not board.done(code)
            and not board.failed(unit, code)
            and not (lease is not None and lease.code == code)
        ]
        if waiting:
            unit, code = max(waiting, key=lambda pair: _ordinal(pair[0]))
            serial += 1
            lease = Lease(unit, code, serial, now + GRACE + timeout + pebble_io.BACKSTOP)
    return dataclasses.replace(board, lease=lease, migrated=migrated, serial=serial)


@dataclasses.dataclass(frozen=True)
class Decision:
    """What a unit does about its code: `done`, `failed`, `wait` (on `holder`) or `run`."""

    kind: str
    holder: str | None = None
    serial: int | None = None


def decide(
    board: Board, *, me: str, code: str, now: float, timeout: int, leader: bool
) -> Decision:
    """A unit's steps 1, 2 and 4."""
    if board.done(code):
        return Decision("done")
    if board.failed(me, code):
        return Decision("failed")
    lease = board.lease
    if lease is not None and lease.unit == me and lease.code == code and not lease.failed:
        if now + timeout + pebble_io.BACKSTOP <= lease.expires:
            return Decision("run", serial=lease.serial)
    if leader and (
        lease is None or not lease.live(now) and not (lease.failed and lease.code == code)
    ):
        return Decision("run", serial=board.serial + 1)
    holder = lease.unit if lease is not None and lease.unit != me else None
    return Decision("wait", holder=holder)


def record(board: Board, *, me: str, code: str, serial: int, ok: bool) -> Board:
    """The leader records its own run (steps 4 and 5)."""
    if ok:
        # Another unit's failed lease stays: only the action (or new code) retries that code.
        lease = board.lease
        kept = lease if lease is not None and lease.failed and lease.code != code else None
        return dataclasses.replace(
            board, lease=kept, migrated=_remember(board.migrated, code), serial=serial
        )
    return dataclasses.replace(board, lease=Lease(me, code, serial, 0.0, True), serial=serial)
