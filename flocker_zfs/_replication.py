# test-case-name: flocker_zfs.test.test_replication
"""
Replication (push) and ownership handoff of this node's datasets to peers.

The client side of the peer protocol (:mod:`flocker_zfs._protocol`): it
reads the peer's copy with ``state``, chooses the base by GUID, streams
``zfs send`` into the peer's ``receive`` through an
:class:`~flocker_zfs.interfaces.IPeer`, and moves ownership with the handoff
state machine:

==== ============================================================ =================
step what                                                         marker after it
==== ============================================================ =================
H1   pre-copy: push incrementals while A is still writable,        --
     while the delta shrinks (at most :data:`PRECOPY_ROUNDS`)
H2   A: ``flocker:handoff=<B>:<g+1>``, then ``readonly=on``         marker
H3   A: snapshot ``flocker-handoff-...``, push the final delta     marker
H4   the peer's newest GUID is the final snapshot's               marker
H5   ``acquire(g+1, final guid)`` on B: B becomes owner, writable   marker
H6   A: ``owner=B, generation=g+1``, marker removed; A read-only   --
==== ============================================================ =================

A is never writable again once H2 began unless the handoff is aborted before
any acquire could have reached B, and B becomes writable only holding the
final snapshot, so there is at most one writable copy at every instant.
:meth:`Replicator.recover` finishes or aborts a handoff interrupted at any
step, by asking the peer what it has.
"""

import re
from functools import partial

from eliot import start_action

from . import _commands as commands
from ._actions import HANDOFF, PRUNE, PUSH, RECOVER
from ._backend import _deferred
from ._openfiles import open_writers as find_open_writers
from ._protocol import (
    ABORT_RECEIVE, ACQUIRE, FULL, HELLO, RECEIVE, RESUME, STATE, ProtocolError,
    validate_guid)
from .errors import (
    DatasetInUse, FlockerZFSError, HandoffInDoubt, NoCommonSnapshot, NotOwner, PeerIsOwner,
    ReplicaDiverged, ZFSError)
from .model import HandoffResult, PushResult
from .names import dataset_name, snapshot_name, validate_dataset_id

#: Most pre-copy rounds before the source goes read-only.
PRECOPY_ROUNDS = 3

#: A pre-copy delta at most this big is small enough to stop pre-copying.
PRECOPY_SMALL = 1024 * 1024


class SimulatedCrash(Exception):
    """
    Raised by a test's fault plan at a named handoff step, standing in for
    the agent dying there.
    """


#: The named points of the handoff where a fault plan is consulted, in order.
STEPS = ("precopied", "marked", "readonly", "final-sent", "acquire-marked", "acquired",
         "generation-recorded", "owner-recorded")


def _marker(peer_uuid, generation, acquiring=False):
    return "%s:%d%s" % (peer_uuid, generation, ":acquiring" if acquiring else "")


#: What ZFS allows in one name component (zfs_namecheck.c), spaces included.
_ZFS_COMPONENT = re.compile(r"\A[A-Za-z0-9_.: -]{1,255}\Z")

_MARKER = re.compile(r"\A([0-9a-f-]{36}):([0-9]{1,18})(:acquiring)?\Z")


def parse_marker(value):
    """
    :return: ``(peer uuid, generation, acquire possibly sent)`` from a
        ``flocker:handoff`` value, or ``None`` if it is malformed.
    """
    match = _MARKER.match(value or "")
    if match is None:
        return None
    return match.group(1), int(match.group(2)), bool(match.group(3))


def _acquired(state, peer_uuid, generation):
    """
    :return: ``True`` if the peer's ``state`` shows it completed an acquire
        at ``generation`` or later (owner, and writable: a peer that crashed
        inside acquire is claimed but read-only, and a repeated acquire
        finishes it).
    """
    return (state.get("owner") == peer_uuid and bool(state.get("writable"))
            and int(state.get("generation") or 0) >= generation)


def _remote_snapshots(state):
    """
    :return: ``[(name, guid)]`` of the peer's snapshots, oldest first,
        re-validated (a peer's output never reaches a command line unchecked).
    """
    result = []
    try:
        for entry in state.get("snapshots") or []:
            name = entry["name"]
            if not (isinstance(name, str) and _ZFS_COMPONENT.match(name)):
                raise ProtocolError("peer reported a snapshot name that is not a ZFS name: %r"
                                    % (name,)[:120])
            result.append((name, validate_guid(str(entry["guid"]))))
    except (KeyError, TypeError, AttributeError):
        raise ProtocolError("peer reported a malformed snapshot list: %r"
                            % (state.get("snapshots"),)[:200])
    return result


class Replicator(object):
    """
    Push and handoff for the datasets of one :class:`ZFSBackend`.

    :param backend: the started-or-not local backend.
    :param reactor: ``IReactorTime`` (for durations).
    :param faults: a test's fault plan, ``callable(step name)`` (see
        :data:`STEPS`), or ``None``.
    :param open_writers: ``callable(path) -> Deferred`` of the processes
        with files open for writing under ``path`` (default: from ``/proc``).
    """

    def __init__(self, backend, reactor, faults=None, open_writers=None):
        self._backend = backend
        self._reactor = reactor
        self._faults = faults
        if open_writers is None:
            open_writers = partial(find_open_writers, reactor)
        self._open_writers = open_writers
        self._peer_uuids = {}

    def _step(self, name):
        """
        A named point of the handoff (:data:`STEPS`); a test's fault plan
        (``callable(name)``) may raise :class:`SimulatedCrash` here.
        """
        if self._faults is not None:
            self._faults(name)

    @property
    def _runner(self):
        return self._backend._runner

    # -- helpers -----------------------------------------------------------

    async def _peer_uuid(self, peer):
        known = self._peer_uuids.get(peer)
        if known is None:
            hello = await peer.call(HELLO)
            uuid = validate_dataset_id(str(hello.get("node_uuid")))
            if uuid == self._backend.node_uuid:
                raise ProtocolError(
                    "peer %s is this node itself (same node uuid %s)" % (peer.address, uuid))
            capabilities = hello.get("capabilities") or {}
            known = self._peer_uuids[peer] = (uuid, capabilities)
        return known[0]

    def _compressed(self, peer):
        """
        ``send -c -L -e`` only when both ends' ZFS can receive it.
        """
        theirs = self._peer_uuids.get(peer, (None, {}))[1]
        return bool(self._backend.capabilities.send_compressed
                    and theirs.get("send_compressed") is True)

    def _full(self, dataset_id, name):
        return snapshot_name(self._backend.pool, dataset_id, name)

    async def _set(self, dataset_id, key, value):
        await self._runner.run(commands.set_property(
            dataset_name(self._backend.pool, dataset_id), key, value))

    async def _inherit(self, dataset_id, key):
        await self._runner.run(commands.inherit_property(
            dataset_name(self._backend.pool, dataset_id), key))

    def _choose_base(self, local, remote_snaps, peer):
        """
        :return: the local :class:`Snapshot` that is the peer's newest, by GUID.
        :raises NoCommonSnapshot: or :class:`ReplicaDiverged`.
        """
        by_guid = {s.guid: s for s in local.snapshots}
        common = [(name, guid) for name, guid in remote_snaps if guid in by_guid]
        if not common:
            raise NoCommonSnapshot(
                "peer %s has dataset %s with no snapshot in common with this node"
                % (peer.address, local.dataset_id))
        newest_name, newest_guid = remote_snaps[-1]
        if newest_guid not in by_guid:
            raise ReplicaDiverged(
                "peer %s's copy of %s has snapshot %s, which this node does not have "
                "(newest common snapshot: %s); an incremental would need a rollback there"
                % (peer.address, local.dataset_id, newest_name, common[-1][0]))
        return by_guid[newest_guid]

    # -- push --------------------------------------------------------------

    @_deferred
    async def push(self, dataset_id, peer, progress=None):
        """
        Make ``peer`` hold a read-only replica of ``dataset_id`` as of a new
        snapshot: a full stream the first time, afterwards an incremental
        from the newest snapshot both have (matched by GUID).

        :param progress: ``callable(bytes_sent, estimated_total)`` called
            while streaming; the total is ``None`` where ZFS cannot estimate.

        :return: ``Deferred`` firing with a :class:`PushResult`.
        :raises NotOwner: this node is not the dataset's writable owner.
        :raises PeerIsOwner: the peer has a writable owned copy.
        :raises NoCommonSnapshot: the peer's copy shares no snapshot.
        :raises ReplicaDiverged: the peer's copy has newer snapshots.
        :raises TransferFailed: the stream failed; the peer kept its last
            complete snapshot.
        """
        validate_dataset_id(dataset_id)
        await self._backend.start()
        async with self._backend.locked(dataset_id):
            with start_action(action_type=PUSH, dataset_id=dataset_id, peer=peer.address):
                local = await self._backend._get(dataset_id)
                if not (local.owned_by(self._backend.node_uuid) and local.writable):
                    raise NotOwner("dataset %s is not writable and owned on this node; "
                                   "only its owner pushes it" % (dataset_id,))
                return await self._push(local, peer, "push", progress)

    async def _push(self, local, peer, kind, progress):
        """
        One snapshot + send, without locking (the caller holds the lock).
        """
        dataset_id = local.dataset_id
        peer_uuid = await self._peer_uuid(peer)
        state = await peer.call(STATE, dataset_id)
        if state.get("exists") and state.get("writable") and state.get("owner") != \
                self._backend.node_uuid:
            raise PeerIsOwner("peer %s has a writable copy of %s owned by %s"
                              % (peer.address, dataset_id, state.get("owner")))
        remote_snaps = _remote_snapshots(state)
        token = state.get("resume_token")
        if token:
            if self._backend.capabilities.resume_tokens:
                resumed = await self._resume(local, peer, peer_uuid, token, progress)
                if resumed is not None:
                    return resumed
            # The partial state would block every receive, and this node
            # cannot continue it (its snapshot is gone, or no `send -t`
            # here): only now is it discarded.
            await peer.call(ABORT_RECEIVE, dataset_id)
            state = await peer.call(STATE, dataset_id)
            remote_snaps = _remote_snapshots(state)
        base = None
        if state.get("exists") and remote_snaps:
            base = self._choose_base(local, remote_snaps, peer)
        elif state.get("exists"):
            raise NoCommonSnapshot("peer %s has dataset %s with no snapshot at all"
                                   % (peer.address, dataset_id))
        name = self._backend._generate_snapshot_name(kind)
        snap = await self._backend._snapshot(dataset_id, name)
        result = await self._send(local, peer, peer_uuid, snap, base, progress)
        await self._after_push(dataset_id, peer_uuid, snap)
        return result

    async def _send(self, local, peer, peer_uuid, snap, base, progress):
        dataset_id = local.dataset_id
        started = self._reactor.seconds()
        base_full = None if base is None else self._full(dataset_id, base.name)
        send_argv = commands.send(self._full(dataset_id, snap.name), base_full,
                                  compressed=self._compressed(peer))
        estimate = await self._estimate(self._full(dataset_id, snap.name), base_full)
        if progress is not None:
            report = progress
            progress = lambda sent: report(sent, estimate)  # noqa: E731
        response, sent = await peer.stream(
            send_argv, RECEIVE, dataset_id, FULL if base is None else base.guid,
            snap.name, snap.guid, local.owner or self._backend.node_uuid,
            max(local.generation, 1), commands.size_value(local.maximum_size),
            progress=progress)
        received = response.get("snapshot") or {}
        if str(received.get("guid")) != str(snap.guid):
            raise ProtocolError(
                "peer %s reported snapshot guid %r after receiving %s (guid %d)"
                % (peer.address, received.get("guid"), snap.name, snap.guid))
        return PushResult(dataset_id=dataset_id, peer=peer.address, snapshot=snap.name,
                          guid=snap.guid, base=None if base is None else base.name,
                          bytes=int(sent), duration=self._reactor.seconds() - started)

    async def _estimate(self, snapshot_full, base_full):
        """
        :return: the stream's size in bytes where ZFS can tell
            (``send -nP``), else ``None``.
        """
        if not self._backend.capabilities.send_estimate:
            return None
        argv = commands.send_estimate(snapshot_full, base_full)
        try:
            return commands.parse_estimate(argv, await self._runner.run(argv))
        except ZFSError:
            return None  # only progress display depends on it

    async def _resume(self, local, peer, peer_uuid, token, progress):
        """
        Continue an interrupted receive from its token when the token names
        one of our snapshots of this dataset; ``None`` when it cannot be used.
        """
        if not commands.is_resume_token(token):
            return None
        argv = commands.send_resume_dry_run(token)
        try:
            out = await self._runner.run(argv)
        except ZFSError:
            return None  # the token's snapshot is gone here: a fresh send is needed
        target = commands.parse_resume_target(argv, out)
        prefix = dataset_name(self._backend.pool, local.dataset_id) + "@"
        if not target.startswith(prefix):
            raise ProtocolError("peer %s offered a resume token for %s, not for %s"
                                % (peer.address, target, local.dataset_id))
        snap_name = target[len(prefix):]
        snaps = {s.name: s for s in local.snapshots}
        if snap_name not in snaps:
            return None
        snap = snaps[snap_name]
        started = self._reactor.seconds()
        if progress is not None:
            report = progress
            progress = lambda sent: report(sent, None)  # noqa: E731
        response, sent = await peer.stream(
            commands.send_resume(token), RECEIVE, local.dataset_id, RESUME, snap.name,
            snap.guid, local.owner or self._backend.node_uuid, max(local.generation, 1),
            commands.size_value(local.maximum_size), progress=progress)
        await self._after_push(local.dataset_id, peer_uuid, snap)
        return PushResult(dataset_id=local.dataset_id, peer=peer.address, snapshot=snap.name,
                          guid=snap.guid, bytes=int(sent), resumed=True,
                          duration=self._reactor.seconds() - started)

    async def _after_push(self, dataset_id, peer_uuid, snap):
        """
        Record (and hold) the peer's new base, release the old one, prune.
        """
        local = await self._backend._get(dataset_id)
        bases = dict(local.peer_bases)
        previous = bases.get(peer_uuid)
        bases[peer_uuid] = snap.guid
        tag = commands.hold_tag(peer_uuid)
        caps = self._backend.capabilities
        if caps.holds:
            try:
                await self._runner.run(commands.hold(tag, self._full(dataset_id, snap.name)))
            except ZFSError:
                pass  # already held (a retried push); protection stays
        await self._set(dataset_id, commands.BASES, commands.format_bases(bases))
        if caps.holds and previous is not None and previous != snap.guid:
            old = [s for s in local.snapshots if s.guid == previous]
            if old:
                try:
                    await self._runner.run(commands.release(
                        tag, self._full(dataset_id, old[0].name)))
                except ZFSError:
                    pass
        # The listing above, with the bases just recorded: no second one.
        await self._prune(local.set(peer_bases=bases))

    async def _prune(self, local):
        """
        Destroy our replication snapshots that no peer needs: keep the newest
        and every recorded peer base; never any other snapshot (a user's,
        ours or not).
        """
        dataset_id = local.dataset_id
        keep = set(local.peer_bases.values())
        if local.snapshots:
            keep.add(local.snapshots[-1].guid)
        doomed = [s for s in local.snapshots
                  if s.guid not in keep and commands.is_replication_snapshot(s.name)]
        if not doomed:
            return
        with start_action(action_type=PRUNE, dataset_id=dataset_id,
                          snapshots=[s.name for s in doomed]):
            for snap in doomed:
                try:
                    await self._runner.run(commands.destroy(self._full(dataset_id, snap.name)))
                except ZFSError:
                    pass  # held or busy: kept, tried again next time

    # -- handoff -----------------------------------------------------------

    @_deferred
    async def handoff(self, dataset_id, peer, progress=None):
        """
        Make ``peer`` the dataset's one writable owner; this node keeps a
        read-only replica.  Resumes an interrupted handoff to the same peer.

        :return: ``Deferred`` firing with a :class:`HandoffResult`.
        :raises HandoffInDoubt: the peer did not answer ``acquire``; this
            node stays read-only until :meth:`recover` settles it.
        """
        validate_dataset_id(dataset_id)
        await self._backend.start()
        async with self._backend.locked(dataset_id):
            with start_action(action_type=HANDOFF, dataset_id=dataset_id,
                              peer=peer.address) as action:
                result = await self._handoff(dataset_id, peer, progress)
                action.add_success_fields(generation=result.generation,
                                          unwritable=result.unwritable,
                                          rounds=result.rounds, bytes=result.bytes)
                return result

    async def _handoff(self, dataset_id, peer, progress):
        me = self._backend.node_uuid
        peer_uuid = await self._peer_uuid(peer)
        local = await self._backend._get(dataset_id)
        marker = parse_marker(local.handoff)
        if not local.owned_by(me):
            if local.owner == peer_uuid:
                if local.handoff is not None:
                    # Crashed after recording the new owner: finish H6.
                    await self._inherit(dataset_id, commands.HANDOFF)
                return HandoffResult(dataset_id=dataset_id, peer=peer.address,
                                     generation=local.generation, already=True)
            raise NotOwner("dataset %s is owned by %s, not by this node"
                           % (dataset_id, local.owner))
        if marker is not None and marker[0] != peer_uuid:
            raise HandoffInDoubt("dataset %s is being handed off to %s, not %s"
                                 % (dataset_id, marker[0], peer_uuid))
        generation = marker[1] if marker else local.generation + 1
        total, rounds = 0, 0
        if marker is None:
            if not local.writable:
                raise NotOwner("dataset %s is read-only here without a handoff in progress"
                               % (dataset_id,))
            # H1: pre-copy while still writable.
            previous = None
            while rounds < PRECOPY_ROUNDS:
                pushed = await self._push(local, peer, "pre", progress)
                rounds += 1
                total += pushed.bytes
                if pushed.bytes <= PRECOPY_SMALL or (
                        previous is not None and pushed.bytes >= previous):
                    break
                previous = pushed.bytes
                local = await self._backend._get(dataset_id)
            self._step("precopied")
            # H2: marker first (zfs-fuse sets one property per call), then read-only.
            await self._set(dataset_id, commands.HANDOFF, _marker(peer_uuid, generation))
            self._step("marked")
        cut = self._reactor.seconds()
        await self._set(dataset_id, "readonly", "on")
        self._step("readonly")
        local = await self._backend._get(dataset_id)
        if marker is None or not marker[2]:
            await self._refuse_open_writers(dataset_id, local)
        # H3/H4: the final delta, unless the peer already has it.
        state = await peer.call(STATE, dataset_id)
        remote = _remote_snapshots(state)
        if _acquired(state, peer_uuid, generation):
            # The peer already acquired it (our earlier acquire's reply was lost).
            final_guid = remote[-1][1] if remote else 0
            final_name = remote[-1][0] if remote else None
        else:
            newest = local.newest_snapshot()
            if (newest is not None and remote and remote[-1][1] == newest.guid
                    and newest.name.startswith("flocker-handoff-")):
                final_guid, final_name = newest.guid, newest.name
            else:
                # H3: the final delta, taken while nothing can write.
                pushed = await self._push(local, peer, "handoff", progress)
                total += pushed.bytes
                final_guid, final_name = pushed.guid, pushed.snapshot
                self._step("final-sent")
            # H5.  Record first that an acquire may be sent: from now on only
            # the peer's answer can make this node writable again.
            await self._set(dataset_id, commands.HANDOFF,
                            _marker(peer_uuid, generation, acquiring=True))
            self._step("acquire-marked")
            await self._acquire(peer, dataset_id, generation, final_guid)
            self._step("acquired")
        acquired = self._reactor.seconds()
        await self._record_new_owner(dataset_id, peer_uuid, generation, final_guid)
        return HandoffResult(dataset_id=dataset_id, peer=peer.address, generation=generation,
                             final_snapshot=final_name, unwritable=acquired - cut,
                             rounds=rounds, bytes=total)

    async def _refuse_open_writers(self, dataset_id, local):
        """
        Where ``readonly=on`` spares files already open for writing
        (zfs-fuse), refuse to go on while any exist: their writes would land
        after the final snapshot and never reach the new owner.  The handoff
        is undone (no acquire was sent), so the dataset is writable here again.

        :raises DatasetInUse: naming the processes and files.
        """
        if not (self._backend.capabilities.readonly_spares_open_files and local.mounted
                and local.mountpoint):
            return
        writers = await self._open_writers(local.mountpoint)
        if not writers:
            return
        await self._set(dataset_id, "readonly", "off")
        await self._inherit(dataset_id, commands.HANDOFF)
        shown = ", ".join("pid %d (%s) %s" % writer for writer in writers[:3])
        raise DatasetInUse("dataset %s has files open for writing: %s%s"
                           % (dataset_id, shown, " ..." if len(writers) > 3 else ""))

    async def _acquire(self, peer, dataset_id, generation, guid):
        try:
            await peer.call(ACQUIRE, dataset_id, generation, guid, self._backend.node_uuid)
        except FlockerZFSError as error:
            raise HandoffInDoubt(
                "peer %s did not confirm taking dataset %s at generation %d (%s); "
                "this node stays read-only" % (peer.address, dataset_id, generation,
                                               error.summary()))

    async def _record_new_owner(self, dataset_id, peer_uuid, generation, final_guid):
        """
        H6: the peer owns it now; this copy is its read-only replica.
        Generation before owner, so a crash between leaves ``owner=self`` at a
        generation the peer also has: recovery asks the peer and finishes.
        """
        await self._set(dataset_id, commands.GENERATION, str(generation))
        self._step("generation-recorded")
        await self._set(dataset_id, commands.OWNER, peer_uuid)
        self._step("owner-recorded")
        await self._inherit(dataset_id, commands.HANDOFF)
        local = await self._backend._get(dataset_id)
        if local.maximum_size is not None:
            # A replica carries the limit as a record, not a quota that a
            # receive could run into.
            await self._set(dataset_id, commands.MAXIMUM_SIZE,
                            commands.size_value(local.maximum_size))
            await self._set(dataset_id, "refquota", "none")
        bases = dict(local.peer_bases)
        bases[peer_uuid] = final_guid
        await self._set(dataset_id, commands.BASES, commands.format_bases(bases))

    # -- recovery ----------------------------------------------------------

    @_deferred
    async def recover(self, dataset_id, peer, abort=False):
        """
        Settle a handoff interrupted at any step (rule set in the module
        docstring).  With ``abort``, take the dataset back (writable here)
        when the peer is reachable and provably did not become the owner.

        :return: ``Deferred`` firing with ``"owner"`` (this node owns and may
            write), ``"replica"`` (the peer took it) or ``"none"`` (nothing to
            do).
        """
        validate_dataset_id(dataset_id)
        await self._backend.start()
        async with self._backend.locked(dataset_id):
            with start_action(action_type=RECOVER, dataset_id=dataset_id,
                              peer=peer.address, abort=abort) as action:
                outcome = await self._recover(dataset_id, peer, abort)
                action.add_success_fields(outcome=outcome)
                return outcome

    async def _recover(self, dataset_id, peer, abort):
        me = self._backend.node_uuid
        local = await self._backend._get(dataset_id)
        marker = parse_marker(local.handoff)
        if marker is None:
            return "owner" if local.owned_by(me) and local.writable else "none"
        if local.owner == marker[0]:
            # Crashed after recording the new owner: finish H6.
            await self._inherit(dataset_id, commands.HANDOFF)
            return "replica"
        if abort and not marker[2]:
            # No acquire was ever sent, so the peer cannot own it: taking it
            # back needs no answer from the peer (which may be unreachable).
            await self._set(dataset_id, "readonly", "off")
            await self._inherit(dataset_id, commands.HANDOFF)
            return "owner"
        peer_uuid = await self._peer_uuid(peer)
        if marker[0] != peer_uuid:
            raise HandoffInDoubt("dataset %s is being handed off to %s, not to %s"
                                 % (dataset_id, marker[0], peer.address))
        state = await peer.call(STATE, dataset_id)
        if _acquired(state, peer_uuid, marker[1]):
            newest = _remote_snapshots(state)
            await self._record_new_owner(dataset_id, peer_uuid, marker[1],
                                         newest[-1][1] if newest else 0)
            return "replica"
        if abort:
            # An acquire was sent and its outcome is unknown: one still in
            # flight could land after a take-back, so finish instead.
            raise HandoffInDoubt(
                "an acquire of %s may still reach %s; not taking it back (recover "
                "without --abort finishes the handoff)" % (dataset_id, peer.address))
        await self._handoff(dataset_id, peer, None)
        return "replica"
