# test-case-name: flocker_zfs.test.test_peerserver
"""
What the peer server has of one dataset, and the stream it receives.

:class:`_Copy` classifies this node's copy of a dataset from one listing:
absent, ours, *adoptable* (an unlabelled copy left by a receive interrupted
before its labels were set; see :mod:`flocker_zfs._peerserver`) or foreign;
:func:`inspect` reads it and :func:`check_receive` decides, from it alone,
whether a ``receive`` is refused; :func:`refresh`, :func:`mount` and
:func:`prune` keep a replica usable after one.
:func:`receive_argv` chooses the ``zfs receive`` flags (never ``-F``);
:class:`BytesReceiveStream` is the fake network's stream.
"""

from eliot import Message, start_action
from eliot.twisted import DeferredContext
from pyrsistent import pmap
from twisted.internet.defer import fail, succeed
from zope.interface import implementer

from . import _commands as commands
from ._actions import COMMAND
from ._mounts import KEPT, UNMOUNTED
from ._protocol import FULL, RESUME
from .errors import (
    BaseMismatch, CommandFailed, DatasetBusy, DatasetExists, DatasetNotFound,
    DestinationExists, HandoffInProgress, LocallyOwned, NoResumeState, NotManaged,
    ResumeStateExists, StaleGeneration, UnexpectedOutput, ZFSError, error_for)
from .interfaces import IReceiveStream
from .names import dataset_name, snapshot_name


@implementer(IReceiveStream)
class BytesReceiveStream(object):
    """
    The stream of a ``receive`` request as bytes, received by a
    :class:`~flocker_zfs.testing.FakeZFS`: the fake network's counterpart
    of the ssh session's stdin.  Usable once, like stdin.

    :param fake: the receiving node's ``FakeZFS``.
    :param bytes data: the ``zfs send`` stream.
    """

    def __init__(self, fake, data):
        self._fake = fake
        self._data = data
        self._used = False

    def receive(self, argv, errors=()):
        argv = [str(arg) for arg in argv]
        with start_action(action_type=COMMAND, argv=argv).context() as action:
            if self._used:
                d = fail(CommandFailed(argv=argv, status=1,
                                       stderr=b"the stream was already consumed\n"))
            else:
                self._used = True
                status, stdout, stderr = self._fake.receive_stream(argv, self._data)
                if status == 0:
                    action.add_success_fields(status=0, stdout_bytes=len(stdout),
                                              stdin_bytes=len(self._data))
                    d = succeed(stdout)
                else:
                    d = fail(error_for(tuple(argv), status, stderr, errors))
            return DeferredContext(d).addActionFinish()


def receive_argv(name, resumable, labels=()):
    """
    ``zfs receive -u [-s] [-o KEY=VALUE ...] NAME``.

    :param bool resumable: ``-s``: keep partial state on interruption so the
        transfer can resume (OpenZFS).
    :param labels: ``(key, value)`` pairs set atomically with the new
        dataset (``-o``, OpenZFS only).
    """
    argv = ["zfs", "receive",
            "-u"]  # never mount on arrival: the copy is labelled, then mounted
    if resumable:
        argv.append("-s")
    for key, value in labels:
        argv += ["-o", "%s=%s" % (key, value)]
    return argv + [name]


# -- what this node has --------------------------------------------------------

ABSENT = "absent"
OURS = "ours"
ADOPTABLE = "adoptable"
FOREIGN = "foreign"


class _Copy(object):
    """
    This node's copy of one dataset, from one listing.

    :ivar str kind: :data:`ABSENT`, :data:`OURS`, :data:`ADOPTABLE` (see
        the module docstring) or :data:`FOREIGN`.
    :ivar dataset: its :class:`~flocker_zfs.model.Dataset` (read as if it
        carried our labels when it does not), or ``None``.
    :ivar props: ``{property: (value, source)}`` of the filesystem.
    :ivar bool clean: no labels but possibly those of an interrupted labelling.
    """

    def __init__(self, name, kind, dataset=None, props=pmap(), clean=False):
        self.name = name
        self.kind = kind
        self.dataset = dataset
        self.props = props
        self.clean = clean

    def local(self, key):
        value, source = self.props.get(key, ("-", "-"))
        return value if source == "local" else None

    def partial(self):
        """``True`` for the partial state an interrupted full ``receive -s`` leaves."""
        return (self.dataset is not None and self.dataset.resume_token is not None
                and not self.dataset.snapshots)

    def refusal(self):
        """:return: the :class:`NotManaged` error for a copy that is not ours."""
        text = "dataset %s exists but is not managed by flocker-zfs" % (self.name,)
        if self.clean and self.partial():
            text += ("; it holds partial state of an interrupted receive without flocker "
                     "labels: if it is flocker's, discard it with `zfs receive -A %s`"
                     % (self.name,))
        elif self.kind == ADOPTABLE:
            only = self.dataset.snapshots[0]
            text += ("; it looks like an interrupted flocker receive of snapshot %s (guid "
                     "%d), and is adopted only by a receive of that snapshot"
                     % (only.name, only.guid))
        return NotManaged(text)


def _relabelled(rows, name, dataset_id):
    """
    :return: a listing (``bytes``) of ``rows`` in which ``name`` carries our
        labels, so :func:`~flocker_zfs._commands.pool_state` reads it.
    """
    rows = dict(rows)
    props = rows[name] = dict(rows[name])
    props[commands.MANAGED] = ("yes", "local")
    props[commands.DATASET_ID] = (dataset_id, "local")
    lines = ["%s\t%s\t%s\t%s\n" % (row, key, value, source)
             for row, props in rows.items() for key, (value, source) in props.items()]
    return "".join(lines).encode("utf-8", "surrogateescape")


async def inspect(backend, dataset_id):
    """
    :param backend: the started :class:`~flocker_zfs.ZFSBackend`.
    :return: the :class:`_Copy` of ``dataset_id`` from one listing.
    """
    pool = backend.pool
    name = dataset_name(pool, dataset_id)
    try:
        argv, out = await backend._listing(name)
    except DatasetNotFound:
        # The pool itself was checked at start-up: this is the dataset.
        return _Copy(name, ABSENT)
    caps = backend.capabilities
    rows = commands.parse_properties(argv, out)
    if name not in rows:
        raise UnexpectedOutput(argv, "no properties of %s in the listing" % (name,), out)
    props = pmap(rows[name])
    state = commands.pool_state(argv, pool, out, caps)
    if dataset_id in state.datasets:
        return _Copy(name, OURS, state.datasets[dataset_id], props)
    copy = _Copy(name, FOREIGN, None, props)
    children = [row for row in rows if row.startswith(name + "/") and "%" not in row]
    if (copy.local(commands.MANAGED) is not None or children
            or copy.local(commands.DATASET_ID) not in (None, dataset_id)):
        return copy
    view = commands.pool_state(argv, pool, _relabelled(rows, name, dataset_id),
                               caps).datasets.get(dataset_id)
    if view is None or view.origin is not None:
        return copy
    copy.dataset, copy.clean = view, True
    if view.resume_token is None and len(view.snapshots) == 1:
        copy.kind = ADOPTABLE
    return copy


def check_receive(copy, node_uuid, base, snapshot, guid, owner, generation):
    """
    The refusals of ``receive`` by the node ``node_uuid``, decided from its
    ``copy`` before anything changes.

    :return: ``True`` to receive the stream, ``False`` if the snapshot
        is already here (only labels, mount and pruning remain).
    """
    name = copy.name
    if copy.kind == FOREIGN:
        raise copy.refusal()
    if copy.kind == ABSENT:
        if base == FULL:
            return True
        if base == RESUME:
            raise NoResumeState("dataset %s has no interrupted receive to resume"
                                % (name,))
        # Never let zfs near this: zfs-fuse receives an incremental for a
        # missing dataset next to any snapshot with the base's guid.
        raise DatasetNotFound(subject=name, stderr=(
            b"no replica here to receive an incremental into; send a full stream"))
    dataset = copy.dataset
    if copy.kind == ADOPTABLE:
        only = dataset.snapshots[0]
        if not ((base == FULL and only.guid == guid and only.name == snapshot)
                or base == only.guid):
            raise copy.refusal()
    # An adoptable copy may still be writable (a crash before its
    # readonly=on), and partial state may show readonly=off though it
    # cannot be mounted; both are made read-only when settled.
    writable = dataset.writable and copy.kind == OURS and not copy.partial()
    if writable or dataset.owner == node_uuid:
        raise LocallyOwned("refusing to receive into a dataset this node owns: %s is %s "
                           "here (owner %s, generation %d)" % (
                               name, "writable" if writable else "read-only",
                               dataset.owner, dataset.generation))
    if dataset.handoff is not None:
        raise HandoffInProgress("dataset %s is being handed off from this node (%s); "
                                "refusing to receive into it" % (name, dataset.handoff))
    if generation < dataset.generation or (
            generation == dataset.generation
            and dataset.owner not in (None, owner)):
        raise StaleGeneration(
            "stale generation: dataset %s is owned by %s at generation %d here; "
            "the stream claims owner %s at generation %d"
            % (name, dataset.owner, dataset.generation, owner, generation))
    newest = dataset.newest_snapshot()
    if dataset.resume_token is not None:
        if base != RESUME:
            raise ResumeStateExists(
                "dataset %s has partial state of an interrupted receive; resume it or "
                "abort it first" % (name,))
        return True
    if base == RESUME:
        raise NoResumeState("dataset %s has no interrupted receive to resume" % (name,))
    if newest is not None and newest.guid == guid:
        return False
    if base == FULL:
        raise DestinationExists(subject=name, stderr=(
            "this node already has it, newest snapshot %s; send an incremental"
            % (described(newest),)).encode("utf-8"))
    if newest is None or newest.guid != base:
        raise BaseMismatch(subject=name, stderr=(
            "the newest snapshot here is %s; the stream's base is guid %d"
            % (described(newest), base)).encode("utf-8"))
    return True


def described(snapshot):
    """:return: a snapshot's name and guid for a message."""
    if snapshot is None:
        return "none (no snapshot)"
    return "%s (guid %d)" % (snapshot.name, snapshot.guid)


# -- after a receive -------------------------------------------------------------

async def refresh(backend, copy):
    """
    Where a receive leaves readers of a mounted copy a stale view
    (zfs-fuse), mount it again (see :mod:`flocker_zfs._peerserver`).  A copy left unmounted
    by a failed mount is marked so, and :func:`mount` tries again.

    :return: ``True`` if readers may still see the copy as it was before
        the receive: a process kept it busy, so it was left mounted.
    """
    if not (copy.dataset.mounted
            and commands.receive_leaves_stale_lookups(backend.capabilities)):
        return False
    outcome, error = await backend._remount(copy.name)
    if outcome == KEPT:
        Message.log(message_type="flocker_zfs:peer:remount_skipped",
                    dataset=copy.name, reason=str(error))
        return True
    if outcome == UNMOUNTED:
        Message.log(message_type="flocker_zfs:peer:remount_failed",
                    dataset=copy.name, reason=str(error))
        copy.dataset = copy.dataset.set(mounted=False)
    return False


async def mount(backend, copy):
    """
    Mount the copy if it is not; a failure is logged, not fatal (the
    data is safe either way and the next request tries again).

    :return: whether it is mounted.
    """
    if copy.dataset.mounted:
        return True
    try:
        await backend._runner.run(commands.mount(copy.name))
    except ZFSError as error:
        if b"already mounted" in error.stderr:
            return True  # setting the mountpoint mounted it
        Message.log(message_type="flocker_zfs:peer:mount_failed",
                    dataset=copy.name, reason=str(error))
        return False
    return True


async def prune(backend, copy):
    """
    Destroy this replica's snapshots older than the newest whose names
    are replication's own (``flocker-push-``, ``-pre-``, ``-handoff-``), by
    exact name; others are kept.

    :return: the names destroyed.
    """
    pool = backend.pool
    dataset_id = copy.dataset.dataset_id
    pruned = []
    for snap in copy.dataset.snapshots[:-1]:
        # Only replication's own: a former owner keeps its user snapshots.
        if not commands.is_replication_snapshot(snap.name):
            continue
        try:
            await backend._runner.run(commands.destroy(
                snapshot_name(pool, dataset_id, snap.name)))
        except (DatasetBusy, DatasetNotFound, DatasetExists) as error:
            # Held, or already gone: kept (or nothing to do).
            Message.log(message_type="flocker_zfs:peer:prune_skipped",
                        snapshot=snap.name, reason=str(error))
            continue
        pruned.append(snap.name)
    return pruned
