"""Every interleaving of `migration_protocol` in a small application, explored exhaustively.

An explicit-state model: 2 or 3 units, one or two code changes, the pure protocol functions
as the charm calls them. Steps: any unit runs a hook (reads the committed databags, writes
only when it ends: a hook that fails writes nothing, its side effects stay); a hook that runs
the script lasts two steps (start; end with success or failure, then commit or hook failure),
other steps interleave; leadership moves at any step; Kubernetes replaces a pod (a restart on
the same code, or the next rolling-update step, highest ordinal first), killing its hook and
script; the template moves to new code; the operator runs `run-migrations` on the leader.
Juju rejects a hook's commit of app data once its unit is no longer the leader.

Checked in every reachable state: at most one script alive; no run of a code whose success is
on record except by the action; no run of a code older than one that succeeded; no app on
code older than every succeeded code. And from every reachable state, using only hooks and
rollout steps, some path reaches every unit serving the template's code, or a unit Blocked
(the action named).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import NamedTuple

import pytest

import migration_protocol as protocol
from migration_protocol import Board, Peer, Result

CODES = ("c0", "c1", "c2")  # c0 is deployed and migrated at the start
MAX_STATES = 100_000  # a bound an unbounded state space (a protocol bug) would hit


class Budget(NamedTuple):
    """How many of each disturbance a run of the model may still use."""

    leader_moves: int
    restarts: int
    hook_failures: int
    script_failures: int
    actions: int
    code_changes: int
    total: int  # disturbances of any kind, code changes aside


class Run(NamedTuple):
    """A hook (or the action) whose script is running."""

    code: int
    serial: int
    action: bool
    app: tuple | None  # the leader's arbitrated board (as `_app`) when it started; else None
    retry: int


class Unit(NamedTuple):
    code: int  # index in CODES of what its pod runs
    pod: int  # generation of its pod
    serving: bool  # its app runs
    marker: tuple[int, int] | None  # (code, serial) that succeeded in this pod
    peer: Peer  # its committed unit databag
    run: Run | None


class World(NamedTuple):
    template: int
    leader: int
    app: tuple  # the committed app databag, as `_app`
    units: tuple[Unit, ...]
    succeeded: frozenset[int]  # ghost: codes whose script succeeded at least once
    budget: Budget


def _name(n: int) -> str:
    return f"app/{n}"


def _pod(n: int, unit: Unit) -> str:
    return f"{n}.{unit.pod}"


def _app(board: Board) -> tuple:
    return (
        board.lease,
        board.migrated,
        board.serial,
        board.retry,
        board.leader,
        board.epoch,
        board.fences,
    )


def _board(world: World, app: tuple | None = None) -> Board:
    lease, migrated, serial, retry, leader, epoch, fences = app or world.app
    peers = {_name(n): u.peer for n, u in enumerate(world.units)}
    return Board(lease, migrated, serial, retry, leader, epoch, fences, peers)


class ViolationError(AssertionError):
    pass


def _set_unit(world: World, n: int, unit: Unit) -> World:
    units = list(world.units)
    units[n] = unit
    return world._replace(units=tuple(units))


def _evidence(world: World, code: int) -> bool:
    """Whether a success of `code` is on record anywhere the protocol looks."""
    board = _board(world)
    return board.done(CODES[code]) or any(u.marker and u.marker[0] == code for u in world.units)


def _start_run(world: World, n: int, run: Run) -> World:
    if any(u.run for u in world.units):
        raise ViolationError(f"two scripts alive: {world}")
    if run.code in world.succeeded and not run.action and _evidence(world, run.code):
        raise ViolationError(f"second run of {CODES[run.code]} on {_name(n)}: {world}")
    if any(c > run.code and _evidence(world, c) for c in world.succeeded):
        raise ViolationError(f"{CODES[run.code]} runs after a newer code succeeded: {world}")
    return _set_unit(world, n, world.units[n]._replace(run=run))


def _serve(world: World, n: int) -> World:
    unit = world.units[n]
    if unit.code > 0 and not any(c >= unit.code for c in world.succeeded):
        raise ViolationError(f"{_name(n)} serves unmigrated {CODES[unit.code]}: {world}")
    return _set_unit(world, n, unit._replace(serving=True))


def _publish(unit: Unit, n: int, world: World, leader: bool, want: str | None) -> Peer:
    peer = unit.peer
    ack = peer.ack
    if not leader and world.app[4] not in (None, _name(n)):
        ack = world.app[5]
    history = protocol.with_history(peer.history, CODES[unit.code])
    return dataclasses.replace(peer, want=want, pod=_pod(n, unit), history=history, ack=ack)


def _read_marker(world: World, n: int) -> tuple[World, World]:
    """A hook's first step: publish its pod and history, and its marked success as its result.

    The hook sees these at once (the view) and commits them only if it ends well.
    """
    unit = world.units[n]
    peer = _publish(unit, n, world, world.leader == n, unit.peer.want)
    if unit.marker and unit.marker[0] == unit.code:  # e.g. a retried hook finds its success
        result = Result(CODES[unit.code], True, unit.marker[1], world.app[3])
        peer = dataclasses.replace(peer, result=protocol.next_result(peer.result, result))
    return world, _set_unit(world, n, unit._replace(peer=peer))


def hook(world: World, n: int, fail: bool) -> list[World]:
    """Unit n runs a hook: gate (and the leader's arbitration) as the charm does."""
    unit = world.units[n]
    if unit.run is not None:
        return []
    leader = world.leader == n
    me, code, pod = _name(n), CODES[unit.code], _pod(n, unit)
    world, view = _read_marker(world, n)
    unit = view.units[n]
    committed = _board(view)
    board = committed
    if leader:
        members = [_name(m) for m in range(len(world.units))]
        board = protocol.arbitrate(committed, leader=me, members=members)
    peer, app = unit.peer, None
    if unit.serving or (unit.marker and unit.marker[0] == unit.code):
        peer = _publish(unit, n, world, leader, None)  # a running app is never gated
        world = _serve(world, n) if not unit.serving else world
    else:
        leads = leader and protocol.leading(committed, board, me)
        decision = protocol.decide(board, me=me, code=code, pod=pod, leads=leads)
        if decision.kind == "run":
            assert decision.serial is not None
            app = _app(board) if leader else None
            run = Run(unit.code, decision.serial, False, app, board.retry)
            return [_start_run(world, n, run)]
        if decision.kind in ("done", "superseded"):
            world = _serve(world, n)
            peer = _publish(unit, n, world, leader, None)
        else:
            peer = _publish(unit, n, world, leader, code)
    if leader:
        app = _app(board)
    if fail:
        return [
            world._replace(
                budget=world.budget._replace(hook_failures=world.budget.hook_failures - 1)
            )
        ]
    world = _set_unit(world, n, world.units[n]._replace(peer=peer))
    return [world._replace(app=app) if app is not None else world]


def action(world: World) -> list[World]:
    """`run-migrations` on the leader."""
    n = world.leader
    if world.units[n].run is not None:
        return []
    world, view = _read_marker(world, n)
    unit = view.units[n]
    me, code = _name(n), CODES[unit.code]
    committed = _board(view)
    members = [_name(m) for m in range(len(world.units))]
    board = protocol.arbitrate(committed, leader=me, members=members)
    leads = protocol.leading(committed, board, me)
    world = world._replace(budget=world.budget._replace(actions=world.budget.actions - 1))
    if protocol.action_refusal(board, me=me, code=code, leads=leads):
        view = view._replace(budget=world.budget)
        return [view._replace(app=_app(board))]
    board = protocol.for_action(board)
    run = Run(unit.code, board.serial + 1, True, _app(board), board.retry)
    return [_start_run(world, n, run)]


def end_run(world: World, n: int, ok: bool, commit: bool) -> World:
    """Unit n's script ends; its hook then commits or fails."""
    unit = world.units[n]
    run = unit.run
    assert run is not None
    unit = unit._replace(run=None)
    world = _set_unit(world, n, unit)
    budget = world.budget
    if ok:
        world = world._replace(succeeded=world.succeeded | {run.code})
        unit = unit._replace(marker=(run.code, run.serial))
        world = _set_unit(world, n, unit)
        if run.code == unit.code:
            world = _serve(world, n)
    else:
        budget = budget._replace(script_failures=budget.script_failures - 1)
    if not commit:
        budget = budget._replace(hook_failures=budget.hook_failures - 1)
    world = world._replace(budget=budget)
    if run.app is not None and world.leader != n:
        commit = False  # Juju rejects the app-data write of a unit no longer leader
    if not commit:
        return world
    code = CODES[run.code]
    result = protocol.next_result(unit.peer.result, Result(code, ok, run.serial, run.retry))
    unit = world.units[n]
    peer = _publish(unit, n, world, run.app is not None, None)
    world = _set_unit(world, n, unit._replace(peer=dataclasses.replace(peer, result=result)))
    if run.app is not None:
        board = _board(world, run.app)
        board = protocol.record(
            board, me=_name(n), code=code, pod=_pod(n, unit), serial=run.serial, ok=ok
        )
        world = world._replace(app=_app(board))
    return world


def replace_pod(world: World, n: int, code: int) -> World:
    """Kubernetes gives unit n a new pod running `code`: its hook and script die with the old."""
    unit = world.units[n]
    return _set_unit(world, n, Unit(code, unit.pod + 1, False, None, unit.peer, None))


def rollout_next(world: World) -> int | None:
    """The unit the rolling update replaces next, if any.

    Highest ordinal first, each after the last replaced one has published itself (committed a
    hook on its pod): the ordering assumption.
    """
    for n in reversed(range(len(world.units))):
        unit = world.units[n]
        if unit.code != world.template:
            return n
        if unit.peer.pod != _pod(n, unit):
            return None
    return None


def progress(world: World) -> list[World]:
    """The steps Juju and Kubernetes keep taking with no disturbance: hooks, the rollout."""
    found = []
    for n, unit in enumerate(world.units):
        if unit.run is not None:
            found.append(end_run(world, n, ok=True, commit=True))
        else:
            found.extend(hook(world, n, fail=False))
    n = rollout_next(world)
    if n is not None:
        found.append(replace_pod(world, n, world.template))
    return found


def disturbances(world: World) -> list[World]:
    """Steps that may happen at any time within the budget: failures, moves, new code."""
    budget = world.budget
    found = []
    if budget.code_changes and world.template + 1 < len(CODES):
        changed = budget._replace(code_changes=budget.code_changes - 1)
        found.append(world._replace(template=world.template + 1, budget=changed))
    if not budget.total:
        return found
    world = world._replace(budget=budget._replace(total=budget.total - 1))
    for n in range(len(world.units)):
        found.extend(_unit_disturbances(world, n))
    if world.budget.actions:
        found.extend(action(world))
    return found


def _unit_disturbances(world: World, n: int) -> list[World]:
    budget, unit = world.budget, world.units[n]
    found = []
    if unit.run is not None:
        outcomes = [(True, False), (False, True), (False, False)]  # (script ok, hook commits)
        for ok, commit in outcomes:
            if (ok or budget.script_failures) and (commit or budget.hook_failures):
                found.append(end_run(world, n, ok, commit))
    elif budget.hook_failures:
        found.extend(hook(world, n, fail=True))
    if budget.restarts:
        restarted = replace_pod(world, n, unit.code)
        found.append(restarted._replace(budget=budget._replace(restarts=budget.restarts - 1)))
    if budget.leader_moves and n != world.leader:
        moved = budget._replace(leader_moves=budget.leader_moves - 1)
        found.append(world._replace(leader=n, budget=moved))
    return found


def goal(world: World) -> bool:
    """Every unit serves the template's code, or some unit is Blocked (naming the action)."""
    if all(u.serving and u.code == world.template for u in world.units):
        return True
    committed = _board(world)
    for n, unit in enumerate(world.units):
        if unit.serving or unit.run is not None:
            continue
        me = _name(n)
        board = committed
        if n == world.leader:
            members = [_name(m) for m in range(len(world.units))]
            board = protocol.arbitrate(committed, leader=me, members=members)
        decision = protocol.decide(
            board, me=me, code=CODES[unit.code], pod=_pod(n, unit), leads=False
        )
        if decision.kind == "failed":
            return True
    return False


def initial(units: int, budget: Budget) -> World:
    """Deployed on c0, migrated, every unit serving, unit 0 leading and committed as such."""
    peers = tuple(
        Unit(0, 0, True, None, Peer(pod=f"{n}.0", history=("c0",)), None) for n in range(units)
    )
    app = _app(Board(migrated=("c0",), leader="app/0", epoch=1))
    return World(0, 0, app, peers, frozenset({0}), budget)


def explore(units: int, budget: Budget) -> int:
    """Explore every reachable state; check safety in each and liveness over all; the count."""
    start = initial(units, budget)
    seen = {start}
    edges: dict[World, list[World]] = {}
    queue = deque([start])
    while queue:
        world = queue.popleft()
        forward = progress(world)
        edges[world] = forward
        for nxt in (*forward, *disturbances(world)):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
        assert len(seen) < MAX_STATES, "unbounded: e.g. leases handed out without end"
    # Liveness: backwards from goal states along progress steps.
    back: dict[World, list[World]] = {}
    for world, forward in edges.items():
        for nxt in forward:
            back.setdefault(nxt, []).append(world)
    live = {w for w in seen if goal(w)}
    todo = list(live)
    while todo:
        for before in back.get(todo.pop(), ()):
            if before not in live:
                live.add(before)
                todo.append(before)
    stuck = [w for w in seen if w not in live]
    assert not stuck, f"{len(stuck)} states cannot progress, e.g. {stuck[0]}"
    return len(seen)


BOUNDS = {
    "2 units, two code changes": (2, Budget(1, 1, 1, 1, 1, 2, 2)),
    "3 units, one code change": (3, Budget(1, 1, 1, 1, 1, 1, 2)),
}


@pytest.mark.parametrize("bound", BOUNDS)
def test_protocol_holds_in_every_interleaving(bound):
    units, budget = BOUNDS[bound]

    states = explore(units, budget)

    print(f"{bound}: {states} states")
    assert states > 1000  # the model did explore
