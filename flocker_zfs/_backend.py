# test-case-name: flocker_zfs.test.test_backend_fake
"""
:class:`ZFSBackend`: the ``IStorageBackend`` for one node's local pool.

Every operation validates its input before any command, waits for the
start-up checks, takes a per-dataset lock (so two operations on one dataset
never interleave their commands), and is one eliot action.  Commands come
from :mod:`flocker_zfs._commands` and run through an injected ``IRunner``:
the real :class:`~flocker_zfs._runner.ProcessRunner` or the fake ZFS.
"""

import datetime
from contextlib import asynccontextmanager
import os
from functools import wraps

from eliot import Message, start_action
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredLock, succeed
from twisted.python.filepath import FilePath
from zope.interface import implementer

from . import _commands as commands
from ._commands import managed_id
from ._dslock import DEFAULT_LOCK_WAIT, DatasetLock, acquire_waiting, validate_lock_dir
from ._actions import (
    CLONE, CREATE, DESTROY, DISCOVER, GET, PREPARE_POOL, RESIZE, SNAPSHOT, START)
from ._mounts import (  # noqa: F401 (the mount root's refusals, re-exported)
    MountFailed, MountRootInsideDataset, enclosing_mountpoint, last_line, remount,
    remove_mountpoint, run_retrying_busy)
from ._runner import ProcessRunner
from .errors import (
    ConfigError, DatasetExists, DatasetNotFound, ForeignSnapshots, MountRootError, NotManaged,
    NotOwner, PoolUnhealthy, ZFSError)
from .interfaces import IStorageBackend
from .model import OPENZFS
from .names import (
    dataset_name, is_dataset_id, snapshot_name, validate_dataset_id,
    validate_mount_root, validate_pool_name, validate_snapshot_name)

#: Pool health states in which datasets can be used.
_USABLE_HEALTH = ("ONLINE", "DEGRADED")


def _deferred(method):
    """
    Turn an ``async def`` method into one returning a ``Deferred``, so even
    validation errors arrive as failed Deferreds, never as synchronous raises.
    """
    @wraps(method)
    def wrapper(*args, **kwargs):
        return Deferred.fromCoroutine(method(*args, **kwargs))
    return wrapper


#: The smallest maximum size accepted.  ZFS itself refuses a ``refquota``
#: below what a new filesystem already uses (tens of KiB, answered as "out
#: of space"); a floor well above that gives a clear error instead.
MINIMUM_SIZE = 1024 * 1024


def _check_size(maximum_size):
    if maximum_size is None:
        return None
    if (isinstance(maximum_size, bool) or not isinstance(maximum_size, int)
            or maximum_size < MINIMUM_SIZE):
        raise ConfigError(
            "invalid maximum size %r: must be a whole number of bytes of at least %d (1 MiB), "
            "or None for no limit" % (maximum_size, MINIMUM_SIZE),
            fix="Give the size in bytes, e.g. 1073741824 for 1 GiB.")
    return maximum_size


@implementer(IStorageBackend)
class ZFSBackend(Service):
    """
    Datasets in ``pool`` on this node, mounted under ``mount_root``.

    :param reactor: provides ``IReactorProcess`` and ``IReactorTime``.
    :param str pool: the pool's name; it must already exist.
    :param str mount_root: absolute path; datasets mount at
        ``<mount_root>/<dataset_id>``.
    :param str node_uuid: this node's identity (see
        :func:`flocker_zfs.node.load_node_uuid`).
    :param runner: an ``IRunner``; default a :class:`ProcessRunner` on ``reactor``.
    :param bool prepare_pool: at start-up make the pool root read-only and
        unmountable when the pool holds only our datasets, so a received
        replica is read-only from its first instant.
    :param lock_dir: ``None`` (the default) to serialise operations on a
        dataset within this process only; or the directory of the
        per-dataset ``flock`` files shared with ``peer-serve`` and every
        other flocker-zfs process of the node (normally
        :data:`~flocker_zfs._dslock.DEFAULT_LOCK_DIR`), so that, say, a
        destroy here never runs during a peer's receive into the dataset.
    :param float lock_wait: seconds an operation waits for another
        process's lock before failing with
        :class:`~flocker_zfs._dslock.DatasetLocked`.
    :raises InvalidName: a bad pool name, mount root or node uuid.
    :raises ConfigError: a lock directory that is not an absolute path.
    """

    def __init__(self, reactor, pool, mount_root, node_uuid, runner=None, prepare_pool=True,
                 lock_dir=None, lock_wait=DEFAULT_LOCK_WAIT):
        self.pool = validate_pool_name(pool)
        self.mount_root = FilePath(validate_mount_root(mount_root))
        if not is_dataset_id(node_uuid):
            raise ConfigError("invalid node uuid %r: must be a lowercase UUID" % (node_uuid,))
        self.node_uuid = node_uuid
        self.name = "flocker-zfs:%s" % (pool,)
        self._reactor = reactor
        self._runner = runner if runner is not None else ProcessRunner(reactor)
        self._prepare = prepare_pool
        self._capabilities = None
        self._waiters = []
        self._locks = {}
        self.lock_dir = None if lock_dir is None else validate_lock_dir(lock_dir)
        self._lock_wait = lock_wait

    # -- start-up --------------------------------------------------------

    def startService(self):
        """
        Start the checks when the service starts; failures are logged by
        eliot, and operations retry the checks.
        """
        Service.startService(self)
        self.start().addErrback(lambda failure: None)

    def start(self):
        if self._capabilities is not None:
            return succeed(self._capabilities)
        # A fresh Deferred per caller, so one caller's callbacks cannot change
        # what another sees; one run of the checks at a time; a failure is
        # not cached, so the next call checks again.
        waiter = Deferred()
        self._waiters.append(waiter)
        if len(self._waiters) == 1:
            Deferred.fromCoroutine(self._start()).addBoth(self._started)
        return waiter

    def _started(self, result):
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(result)

    @property
    def capabilities(self):
        """
        The detected :class:`~flocker_zfs.model.Capabilities`, or ``None``
        before :meth:`start` has succeeded.
        """
        return self._capabilities

    async def _start(self):
        with start_action(action_type=START, pool=self.pool,
                          mount_root=self.mount_root.path) as action:
            capabilities = await self._detect()
            argv = commands.pool_health(self.pool)
            health = commands.parse_pool_health(
                argv, await self._runner.run(argv), self.pool)
            if health not in _USABLE_HEALTH:
                raise PoolUnhealthy(subject=self.pool, health=health)
            if capabilities.implementation == OPENZFS:
                out = await self._runner.run(commands.pool_feature(self.pool, "bookmarks"))
                capabilities = capabilities.set(bookmarks=commands.feature_usable(out))
            self._check_mount_root()
            if self._prepare:
                await self._prepare_pool()
            action.add_success_fields(implementation=capabilities.implementation,
                                      version=capabilities.version)
            self._capabilities = capabilities
            return capabilities

    async def _detect(self):
        try:
            out = await self._runner.run(commands.version())
        except ZFSError as error:
            if commands.is_unrecognized_command(error.stderr):
                return commands.legacy_capabilities()
            raise
        return commands.capabilities_from_version(out)

    def _check_mount_root(self):
        path = self.mount_root.path
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as error:
            raise MountRootError("mount root %s cannot be created: %s"
                                 % (path, os.strerror(error.errno)))
        if not os.path.isdir(path):
            raise MountRootError("mount root %s is not a directory" % (path,))
        if not os.access(path, os.W_OK | os.X_OK):
            raise MountRootError("mount root %s is not writable" % (path,))

    async def _prepare_pool(self):
        argv = commands.get_properties(
            self.pool, properties=("type", "readonly", "canmount",
                                   commands.MANAGED, commands.DATASET_ID))
        rows = commands.parse_properties(argv, await self._runner.run(argv))
        root = rows.get(self.pool, {})
        wanted = [("canmount", "off"), ("readonly", "on")]
        missing = [(key, value) for key, value in wanted
                   if root.get(key, ("",))[0] != value]
        if not missing:
            return
        foreign = commands.foreign_children(self.pool, rows)
        with start_action(action_type=PREPARE_POOL, pool=self.pool,
                          changes=["%s=%s" % kv for kv in missing],
                          foreign=foreign[:20]) as action:
            if foreign:
                # Changing the root would change these through inheritance;
                # ours carry an explicit readonly anyway.
                action.add_success_fields(prepared=False)
                return
            # canmount first: a read-only but mounted root would stop ZFS
            # from creating mountpoint directories inside it.
            for key, value in missing:
                await self._runner.run(commands.set_property(self.pool, key, value))
            action.add_success_fields(prepared=True)

    # -- helpers -----------------------------------------------------------

    def _lock(self, dataset_id):
        lock = self._locks.get(dataset_id)
        if lock is None:
            lock = self._locks[dataset_id] = DeferredLock()
        return lock

    def _unlock(self, dataset_id, lock):
        lock.release()
        if not lock.locked and not lock.waiting:
            self._locks.pop(dataset_id, None)

    @asynccontextmanager
    async def locked(self, dataset_id, purpose="replication"):
        """
        Hold the dataset's lock: operations on one dataset (here and in the
        replication layer) never interleave their commands.  With a
        ``lock_dir``, also its ``flock`` shared with the node's other
        flocker-zfs processes (waited for without blocking the reactor, at
        most ``lock_wait`` seconds).

        :param str purpose: recorded for a process that finds it locked.
        :raises DatasetLocked: another process kept it past ``lock_wait``.
        """
        lock = self._lock(dataset_id)
        await lock.acquire()
        try:
            held = None
            if self.lock_dir is not None:
                held = DatasetLock(self.lock_dir, self.pool, validate_dataset_id(dataset_id),
                                   purpose="flocker-zfs %s" % (purpose,))
                await acquire_waiting(self._reactor, held, self._lock_wait)
            try:
                yield
            finally:
                if held is not None:
                    held.release()
        finally:
            self._unlock(dataset_id, lock)

    async def _listing(self, target, recursive=True):
        argv = commands.get_properties(
            target, recursive=recursive,
            properties=commands.discovery_properties(self._capabilities))
        return argv, await self._runner.run(argv)

    async def _get(self, dataset_id):
        """
        The managed dataset ``dataset_id``, from one listing.

        :raises DatasetNotFound: nothing has that name.
        :raises NotManaged: something has that name but it is not ours.
        """
        name = dataset_name(self.pool, dataset_id)
        argv, out = await self._listing(name)
        state = commands.pool_state(argv, self.pool, out, self._capabilities)
        if dataset_id in state.datasets:
            return state.datasets[dataset_id]
        raise NotManaged("dataset %s exists but is not managed by flocker-zfs" % (name,))

    async def _remount(self, name):
        """
        Mount filesystem ``name`` again (see :func:`~flocker_zfs._mounts.remount`),
        without locking: the caller holds the dataset's lock.
        """
        return await remount(self._reactor, self._runner, name)

    def _options(self, dataset_id, maximum_size):
        return commands.ownership_options(
            dataset_id, self.node_uuid, 1, self.path(dataset_id).path, maximum_size)

    async def _refuse_nested_mount_root(self):
        """
        Refuse, before anything is created, a mount root inside one of our
        datasets' mountpoints (by its path and by the path it resolves to).

        :raises MountRootInsideDataset: it is.
        """
        argv = commands.get_properties(self.pool, properties=(
            "type", "mountpoint", commands.MANAGED, commands.DATASET_ID))
        rows = commands.parse_properties(argv, await self._runner.run(argv))
        ours = [(managed_id(self.pool, name, props), props.get("mountpoint", ("-",))[0])
                for name, props in rows.items()]
        ours = [(dataset_id, mountpoint) for dataset_id, mountpoint in ours if dataset_id]
        root = os.path.normpath(self.mount_root.path)
        for path in (root, os.path.realpath(root)):
            inside = enclosing_mountpoint(path, ours)
            if inside is not None:
                raise MountRootInsideDataset(
                    "mount root %s is inside the mountpoint %s of flocker-zfs dataset %s: "
                    "a dataset mounted there would be hidden, or would block, whenever that "
                    "dataset is unmounted, handed off, made a read-only replica or destroyed"
                    % (root, inside[1], inside[0]))

    async def _undo_unmounted(self, dataset_id, error):
        """
        After ``zfs create`` or ``zfs clone`` failed with ``error``: if it
        created the dataset but could not mount it, destroy it again (it is
        new, empty and unused) and raise :class:`MountFailed`; otherwise
        return (``error`` stands).
        """
        # Only a failure to mount: any other failure (busy, out of space, a
        # listing that lost the dataset) proves nothing about who made an
        # existing dataset, and it must never be destroyed on a guess.
        if b"mount" not in (getattr(error, "stderr", b"") or b""):
            return
        try:
            dataset = await self._get(dataset_id)
        except (ZFSError, NotManaged):
            return      # not created (or cannot tell): the first error says it
        if (dataset.mounted or dataset.snapshots or dataset.generation != 1
                or not dataset.owned_by(self.node_uuid)):
            return
        name = dataset_name(self.pool, dataset_id)
        where = self.path(dataset_id).path
        try:
            await self._runner.run(commands.destroy(name))
        except ZFSError as undo:
            raise MountFailed(
                "dataset %s was created but could not be mounted at %s (%s), and destroying "
                "it again failed (%s)" % (dataset_id, where, last_line(error),
                                          last_line(undo)),
                fix="Destroy it with `flocker-zfs destroy %s`, then make %s usable as "
                    "described in the first message and retry." % (dataset_id, where))
        remove_mountpoint(dataset, self.path(dataset_id).path)
        raise MountFailed(
            "dataset %s could not be mounted at %s (%s); it was destroyed again, so "
            "nothing changed" % (dataset_id, where, last_line(error)),
            fix=MountFailed.fix.replace("DATASET_ID", dataset_id))

    async def _refuse_if_foreign(self, dataset_id):
        """
        After "dataset already exists": re-raise as :class:`NotManaged` if
        the existing dataset is not ours.
        """
        await self._get(dataset_id)

    def _generate_snapshot_name(self, kind=None):
        """
        ``flocker-[<kind>-]<UTC time>-<random>``: ours by its prefix, sorted
        by time, unique without asking ZFS.
        """
        when = datetime.datetime.fromtimestamp(self._reactor.seconds(), datetime.timezone.utc)
        middle = "%s-" % (kind,) if kind else ""
        return "flocker-%s%s-%s" % (middle, when.strftime("%Y%m%dT%H%M%SZ"),
                                    os.urandom(3).hex())

    # -- IStorageBackend ---------------------------------------------------

    def path(self, dataset_id):
        return self.mount_root.child(validate_dataset_id(dataset_id))

    @_deferred
    async def discover(self):
        await self.start()
        with start_action(action_type=DISCOVER, pool=self.pool) as action:
            argv, out = await self._listing(self.pool)
            state = commands.pool_state(argv, self.pool, out, self._capabilities)
            action.add_success_fields(datasets=len(state.datasets), ignored=list(state.ignored))
            return state

    @_deferred
    async def get(self, dataset_id):
        validate_dataset_id(dataset_id)
        await self.start()
        with start_action(action_type=GET, pool=self.pool, dataset_id=dataset_id):
            return await self._get(dataset_id)

    @_deferred
    async def create(self, dataset_id, maximum_size=None):
        validate_dataset_id(dataset_id)
        _check_size(maximum_size)
        await self.start()
        async with self.locked(dataset_id, "create"):
            with start_action(action_type=CREATE, pool=self.pool, dataset_id=dataset_id,
                              maximum_size=maximum_size):
                name = dataset_name(self.pool, dataset_id)
                await self._refuse_nested_mount_root()
                try:
                    await self._runner.run(commands.create(
                        name, self._options(dataset_id, maximum_size)))
                except DatasetExists:
                    await self._refuse_if_foreign(dataset_id)
                    raise
                except ZFSError as error:
                    await self._undo_unmounted(dataset_id, error)
                    raise
                return await self._get(dataset_id)

    @_deferred
    async def destroy(self, dataset_id, force=False):
        validate_dataset_id(dataset_id)
        await self.start()
        async with self.locked(dataset_id, "destroy"):
            with start_action(action_type=DESTROY, pool=self.pool, dataset_id=dataset_id,
                              force=force):
                await self._destroy(dataset_id, force)

    async def _destroy(self, dataset_id, force):
        dataset = await self._get(dataset_id)
        name = dataset_name(self.pool, dataset_id)
        foreign = [s.name for s in dataset.snapshots if not s.managed]
        if foreign and not force:
            raise ForeignSnapshots(
                "dataset %s has snapshots flocker-zfs did not take: %s"
                % (name, ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")))
        if dataset.mounted:
            # zfs-fuse answers "dataset is busy" to destroying a mounted
            # filesystem; unmounting first also reports a real busy mount.
            await self._runner.run(commands.unmount(name))
        # Our own holds on replication bases would make the destroy fail.
        held = await self._set_holds(dataset, commands.release)
        try:
            await run_retrying_busy(self._reactor, self._runner,
                                    commands.destroy(name, recursive=True), retry=dataset.mounted)
        except ZFSError:
            await self._set_holds(dataset, commands.hold, held)
            if dataset.mounted:
                # Leave it as we found it: mounted.
                try:
                    await run_retrying_busy(self._reactor, self._runner, commands.mount(name))
                except ZFSError as error:
                    Message.log(message_type="flocker_zfs:backend:remount_failed",
                                dataset_id=dataset_id, reason=str(error))
            raise
        remove_mountpoint(dataset, self.path(dataset_id).path)

    async def _set_holds(self, dataset, command, only=None):
        """
        Release (or put back) the ``flocker-<peer>`` hold on each peer's base
        snapshot (listing holds fails on zfs-fuse, so ``peer_bases`` says
        where they are).

        :return: the ``(tag, snapshot)`` pairs changed.
        """
        changed = []
        by_guid = {s.guid: s.name for s in dataset.snapshots}
        for peer, guid in sorted(dataset.peer_bases.items()):
            if guid not in by_guid:
                continue
            target = (commands.hold_tag(peer),
                      snapshot_name(self.pool, dataset.dataset_id, by_guid[guid]))
            if only is not None and target not in only:
                continue
            try:
                await self._runner.run(command(*target))
                changed.append(target)
            except ZFSError:
                pass  # no such hold (never placed, or holds unsupported)
        return changed

    @_deferred
    async def resize(self, dataset_id, maximum_size):
        validate_dataset_id(dataset_id)
        _check_size(maximum_size)
        await self.start()
        async with self.locked(dataset_id, "resize"):
            with start_action(action_type=RESIZE, pool=self.pool, dataset_id=dataset_id,
                              maximum_size=maximum_size):
                dataset = await self._get(dataset_id)
                if not dataset.owned_by(self.node_uuid):
                    raise NotOwner(
                        "dataset %s is owned by node %s, not this node (%s)"
                        % (dataset_id, dataset.owner, self.node_uuid))
                await self._runner.run(commands.set_property(
                    dataset_name(self.pool, dataset_id), "refquota",
                    commands.size_value(maximum_size)))
                return await self._get(dataset_id)

    @_deferred
    async def snapshot(self, dataset_id, name=None):
        validate_dataset_id(dataset_id)
        if name is not None:
            validate_snapshot_name(name)
        await self.start()
        if name is None:
            name = self._generate_snapshot_name()
        async with self.locked(dataset_id, "snapshot"):
            with start_action(action_type=SNAPSHOT, pool=self.pool, dataset_id=dataset_id,
                              name=name):
                await self._get(dataset_id)
                return await self._snapshot(dataset_id, name)

    async def _snapshot(self, dataset_id, name):
        """
        Take snapshot ``name`` of our dataset, without locking.

        :return: the new :class:`~flocker_zfs.model.Snapshot`.
        """
        await self._runner.run(commands.snapshot(snapshot_name(self.pool, dataset_id, name)))
        dataset = await self._get(dataset_id)
        return [s for s in dataset.snapshots if s.name == name][0]

    @_deferred
    async def clone(self, dataset_id, snapshot, new_dataset_id, maximum_size=None):
        validate_dataset_id(dataset_id)
        validate_snapshot_name(snapshot)
        validate_dataset_id(new_dataset_id)
        _check_size(maximum_size)
        await self.start()
        async with self.locked(new_dataset_id, "clone"):
            with start_action(action_type=CLONE, pool=self.pool, dataset_id=dataset_id,
                              snapshot=snapshot, new_dataset_id=new_dataset_id):
                source = await self._get(dataset_id)
                full = snapshot_name(self.pool, dataset_id, snapshot)
                if snapshot not in [s.name for s in source.snapshots]:
                    raise DatasetNotFound(subject=full)
                await self._refuse_nested_mount_root()
                try:
                    await self._runner.run(commands.clone(
                        full, dataset_name(self.pool, new_dataset_id),
                        self._options(new_dataset_id, maximum_size)))
                except DatasetExists:
                    await self._refuse_if_foreign(new_dataset_id)
                    raise
                except ZFSError as error:
                    await self._undo_unmounted(new_dataset_id, error)
                    raise
                return await self._get(new_dataset_id)
