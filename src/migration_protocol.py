"""Who runs the app's migration, when: a lease the leader hands out over a peer relation.

Protocol, over the `secret-storage` peer relation. Juju lets only the leader write the app
databag and each unit only its own unit databag; a hook's writes become visible to other units
only when the hook ends (and are lost if it fails), and each write wakes the other units with
relation-changed. No step reads a clock.

    unit databag (each unit, its own)  `migration-want`     code id the unit waits to migrate
                                       `migration-result`   {code, ok, serial, retry}: last run
                                       `migration-pod`      its workload container's identity
                                       `migration-history`  codes its pods ran, oldest first
                                       `migration-ack`      last leader epoch it saw as follower
    app databag (leader only)          `migration-lease`    {unit, code, serial, pod, failed}
                                       `migrated`           code ids migrated (JSON list)
                                       `migration-serial`   the last serial handed out
                                       `migration-retry`    bumped by the action: forget failures
                                       `migration-leader`   {unit, epoch, fences}: who leads

A *pod* is a random id the charm keeps in the workload container: a new one means every process
of the old container, scripts included, is gone. A *marker* in that container (root-owned)
records "code C succeeded here, serial s" before the app starts, so a retried hook finds it.

1. A unit whose code C is *done* (its marker, `migrated`, or some unit's result says C
   succeeded) starts its app and clears its want. C is *superseded* when a code that some unit's
   history shows after C is done: never migrate back, start the app (the rollout replaces it).
   If its own result says C failed in this retry round, or a failed lease for C exists, it is
   Blocked, naming the action.
2. Otherwise a unit writes `migration-want: C` and waits. It runs the script only inside a hook
   that sees a lease naming itself, C and its current pod, not failed; it writes the marker
   first, then its result (and clears its want) when the hook ends.
3. The leader, in every hook and before the action (`arbitrate`): on finding `migration-leader`
   naming another unit, bumps the epoch and *fences* that unit (and keeps older fences); a fence
   lifts when the fenced unit acks the epoch, leaves, or shows a new pod. It folds successful
   results into `migrated`. It ends the lease when the holder published a result for it
   (success: gone; failure: kept, marked failed, until the action, or C is done or
   superseded), left, shows a new pod, or wants another code. With no lease (or only a failed
   one) and no fence, it grants the highest-ordinal other unit wanting a code that is neither
   done, superseded, its own failure, nor the failed lease's code.
4. The leader migrates its own code without a lease only when the *committed* `migration-leader`
   names it with no fence and there is no live lease; its result, and on failure a failed lease
   in its own name, are written when that hook ends.
5. `run-migrations` runs on the leader, after `arbitrate`, under the same condition as 4 (it
   refuses while another unit holds a live lease, while fenced, or for superseded code). It
   bumps `migration-retry`, runs, and records as in 4. A unit's success is never overwritten by
   a later failure of the same code.

No concurrency: a script runs only inside a hook (it dies with its supervisor, its hook's
process and its pod), under a lease or an unfenced leadership. A lease is handed out only when
no other is live, and a live lease ends only on evidence that its run is over: the holder's
committed result or new want (written by a later hook than the run's, since a unit runs one
hook at a time), its departure, or its new pod. A holder with a new pod ignores a lease for its
old one. The leader runs unleased only when no lease is live, and grants nothing while it runs
(same hook). A leader that loses leadership mid-run cannot commit (Juju rejects its app-databag
write), and its successor fences it: no grant and no run of its own until the old leader's ack
(written by a hook after the run's), departure or new pod. Unleased runs need the committed
`migration-leader` naming the runner, so no successor can miss the fence.

Exactly once: a success is recorded in the marker before the app starts, so a failed hook's
retry finds it; only an action, or the pod dying before its hook committed (marker and result
lost together), re-runs a code that succeeded: scripts must tolerate that re-run.

No deadlock: every wait needs only a hook on the holder or the leader, which data changes and
update-status provide: a lease ends when its holder reports, leaves or is replaced; a fence when
the fenced unit runs any hook, leaves or is replaced. A failed lease or failure blocks only units
of that code, and they show Blocked with the action. A waiting unit does not add the charm's
layer, so its pod has no failing ready check and does not stall the StatefulSet rollout.

Never back: "newer" comes from the units' histories, so it relies on the rolling update
(highest ordinal first) replacing a pod only after the one it replaced last committed a hook.
A success lost with its pod (above) is unknown to it too.

`tests/unit/charm/test_migration_protocol_model.py` explores these functions exhaustively.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

HISTORY = 16  # migrated code ids remembered, and codes in each unit's history


@dataclasses.dataclass(frozen=True)
class Lease:
    """The right to run the migration for `code`, held by `unit` while on pod `pod`."""

    unit: str
    code: str
    serial: int
    pod: str
    failed: bool = False


@dataclasses.dataclass(frozen=True)
class Result:
    """A unit's last run: for which code, how it went, under which serial and retry round."""

    code: str
    ok: bool
    serial: int
    retry: int


@dataclasses.dataclass(frozen=True)
class Peer:
    """What one unit published about itself."""

    want: str | None = None
    result: Result | None = None
    pod: str | None = None
    history: tuple[str, ...] = ()
    ack: int = 0


@dataclasses.dataclass(frozen=True)
class Fence:
    """A former leader that may still be running unleased until it acks `epoch`."""

    unit: str
    pod: str | None
    epoch: int


@dataclasses.dataclass(frozen=True)
class Board:
    """Everything the peer relation says about migrations."""

    lease: Lease | None = None
    migrated: tuple[str, ...] = ()
    serial: int = 0
    retry: int = 0
    leader: str | None = None
    epoch: int = 0
    fences: tuple[Fence, ...] = ()
    peers: Mapping[str, Peer] = dataclasses.field(default_factory=dict)

    def done(self, code: str) -> bool:
        """Whether the migration for `code` has succeeded somewhere."""
        return code in self.migrated or any(
            p.result is not None and p.result.ok and p.result.code == code
            for p in self.peers.values()
        )

    def newer(self, code: str) -> set[str]:
        """Codes some unit moved to after `code`, directly or in steps."""
        edges: dict[str, set[str]] = {}
        for peer in self.peers.values():
            for before, after in zip(peer.history, peer.history[1:]):
                if before != after:
                    edges.setdefault(before, set()).add(after)
        found: set[str] = set()
        todo = [code]
        while todo:
            for after in edges.get(todo.pop(), ()):
                if after not in found:
                    found.add(after)
                    todo.append(after)
        found.discard(code)
        return found

    def outdated(self, code: str) -> bool:
        """Whether a newer code than `code` is migrated: never migrate back to `code`."""
        return any(self.done(c) for c in self.newer(code))

    def superseded(self, code: str) -> bool:
        """Whether `code` was never migrated and is outdated: its app starts without a run."""
        return not self.done(code) and self.outdated(code)

    def failed(self, unit: str, code: str) -> bool:
        """Whether `unit`'s own run for `code` failed in the current retry round."""
        peer = self.peers.get(unit)
        result = peer.result if peer else None
        if result is None or result.ok or self.done(code):
            return False
        return result.code == code and result.retry == self.retry

    def live_lease(self) -> Lease | None:
        """The lease under which a run may be going on."""
        return self.lease if self.lease is not None and not self.lease.failed else None


def ordinal(unit: str) -> int:
    """The unit's number (`app/3` -> 3)."""
    return int(unit.rsplit("/", 1)[-1])


def remember(codes: tuple[str, ...], code: str) -> tuple[str, ...]:
    """`codes` with `code` appended unless it is already there, the last HISTORY kept."""
    return codes if code in codes else (*codes, code)[-HISTORY:]


def with_history(history: tuple[str, ...], code: str) -> tuple[str, ...]:
    """A unit's history once its pod runs `code` (appended unless it is the last one)."""
    return history if history[-1:] == (code,) else (*history, code)[-HISTORY:]


def _fenced(fence: Fence, board: Board, members: set[str]) -> bool:
    peer = board.peers.get(fence.unit)
    if fence.unit not in members or peer is None:
        return False
    if fence.pod is not None and peer.pod != fence.pod:
        return False
    return peer.ack < fence.epoch


def _end_lease(lease: Lease, board: Board, members: set[str]) -> Lease | None:
    peer = board.peers.get(lease.unit)
    if lease.failed:
        stale = board.done(lease.code) or board.superseded(lease.code)
        return None if stale else lease
    if lease.unit not in members or peer is None:
        return None
    result = peer.result
    if result is not None and (result.serial, result.code) == (lease.serial, lease.code):
        return None if result.ok else dataclasses.replace(lease, failed=True)
    if peer.pod != lease.pod or peer.want != lease.code:
        return None
    return lease


def arbitrate(board: Board, *, leader: str, members: Iterable[str]) -> Board:
    """The leader's step 3: fence former leaders, fold results, end the lease, grant the next."""
    members = set(members)
    epoch, fences = board.epoch, list(board.fences)
    if board.leader != leader:
        epoch += 1
        if board.leader is not None:
            previous = board.peers.get(board.leader)
            fences.append(Fence(board.leader, previous.pod if previous else None, epoch))
    fences = [f for f in fences if f.unit != leader and _fenced(f, board, members)]
    migrated = board.migrated
    for peer in board.peers.values():
        if peer.result is not None and peer.result.ok:
            migrated = remember(migrated, peer.result.code)
    board = dataclasses.replace(
        board, leader=leader, epoch=epoch, fences=tuple(fences), migrated=migrated
    )
    lease = board.lease and _end_lease(board.lease, board, members)
    serial = board.serial
    if (lease is None or lease.failed) and not fences:
        waiting = [
            (unit, peer)
            for unit, peer in board.peers.items()
            if unit in members
            and unit != leader
            and peer.want
            and peer.pod
            and not board.done(peer.want)
            and not board.superseded(peer.want)
            and not board.failed(unit, peer.want)
            and not (lease is not None and lease.code == peer.want)
        ]
        if waiting:
            unit, peer = max(waiting, key=lambda pair: ordinal(pair[0]))
            assert peer.want and peer.pod  # filtered above
            serial += 1
            lease = Lease(unit, peer.want, serial, peer.pod)
    return dataclasses.replace(board, lease=lease, serial=serial)


def leading(committed: Board, arbitrated: Board, me: str) -> bool:
    """Whether the leader `me` may run unleased (step 4): committed as leader, and unfenced."""
    return committed.leader == me and not arbitrated.fences


@dataclasses.dataclass(frozen=True)
class Decision:
    """What a unit does: `done`, `superseded`, `failed` (on `holder`), `wait` or `run`."""

    kind: str
    holder: str | None = None
    serial: int | None = None


def decide(board: Board, *, me: str, code: str, pod: str, leads: bool) -> Decision:
    """A unit's steps 1, 2 and 4 (`leads`: see `leading`; False for non-leaders)."""
    if board.done(code):
        return Decision("done")
    if board.superseded(code):
        return Decision("superseded")
    if board.failed(me, code):
        return Decision("failed")
    lease = board.lease
    if lease is not None and lease.code == code and lease.failed:
        return Decision("failed", holder=lease.unit)
    if lease is not None and (lease.unit, lease.code, lease.pod) == (me, code, pod):
        return Decision("run", serial=lease.serial)
    if leads and board.live_lease() is None:
        return Decision("run", serial=board.serial + 1)
    holder = lease.unit if lease is not None and not lease.failed and lease.unit != me else None
    return Decision("wait", holder=holder)


def action_refusal(board: Board, *, me: str, code: str, leads: bool) -> str | None:
    """Why the leader may not run the action now (step 5), or None."""
    lease = board.live_lease()
    if lease is not None and lease.unit != me:
        return f"a migration is running on {lease.unit}"
    if not leads:
        fenced = ", ".join(f.unit for f in board.fences) or "the previous leader"
        return f"leadership just changed: waiting for {fenced} to acknowledge it"
    if board.outdated(code):
        return "this unit runs older code than the last migrated code"
    return None


def for_action(board: Board) -> Board:
    """The board as the action starts: a new retry round, failures and failed lease forgotten."""
    lease = board.lease if board.lease is not None and not board.lease.failed else None
    return dataclasses.replace(board, retry=board.retry + 1, lease=lease)


def next_result(previous: Result | None, run: Result) -> Result:
    """A unit's result after `run`: a success is never overwritten by a failure of its code."""
    if previous is not None and previous.ok and previous.code == run.code and not run.ok:
        return previous
    return run


def record(board: Board, *, me: str, code: str, pod: str, serial: int, ok: bool) -> Board:
    """The leader records its own run (steps 4 and 5)."""
    if ok or board.done(code):
        # Another unit's failed lease stays: only the action (or new code) retries that code.
        lease = board.lease
        kept = lease if lease is not None and lease.failed and lease.code != code else None
        migrated = remember(board.migrated, code) if ok else board.migrated
        return dataclasses.replace(board, lease=kept, migrated=migrated, serial=serial)
    return dataclasses.replace(board, lease=Lease(me, code, serial, pod, True), serial=serial)
