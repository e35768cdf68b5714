"""
The ``IStorageBackend`` conformance suite, written once and run against the
fake ZFS (``test_backend_fake``) and real ZFS (``test_backend_real``).

A *harness* gives each test a backend and the few things only the test
environment can do: run raw ``zfs`` commands (to build foreign datasets and
to look at the pool behind the backend's back) and make a dataset busy.
"""

import errno
import os
import subprocess
import uuid

from twisted.trial.unittest import SkipTest, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from .._backend import MountFailed, MountRootInsideDataset
from ..errors import (
    ConfigError, DatasetBusy, DatasetExists, DatasetNotFound, ForeignSnapshots,
    HasDependentClones, InvalidDatasetId, InvalidName, MountRootError, NotManaged,
    NotOwner, PoolNotFound, QuotaTooSmall)
from ..interfaces import IRunner, IStorageBackend
from ..model import Capabilities, PoolState

MiB = 1024 * 1024


@implementer(IRunner)
class RecordingRunner(object):
    """
    An ``IRunner`` that records every argv before passing it on, so tests
    can assert which commands an operation ran (or that it ran none).
    """

    def __init__(self, runner):
        self._runner = runner
        self.commands = []

    def run(self, argv, errors=(), timeout=None):
        self.commands.append(tuple(argv))
        return self._runner.run(argv, errors, timeout)


class Harness(object):
    """
    What a conformance test needs besides the backend.

    :ivar backend: the ``IStorageBackend`` under test.
    :ivar recorder: the :class:`RecordingRunner` the backend runs through.
    :ivar raw: an ``IRunner`` on the same pool that bypasses the recorder.
    :ivar str profile: ``"zfs-fuse"`` or ``"openzfs"``.
    :ivar make_busy: ``callable(mountpoint) -> callable()`` that keeps the
        mounted dataset busy until the returned undo is called.
    :ivar make_backend: ``callable(pool=..., mount_root=...)`` for another
        backend on the same ZFS (e.g. a missing pool).
    :ivar bool enforces_readonly: writes to a read-only dataset fail (real
        ZFS; the fake cannot stop writes to a real directory).
    """

    def __init__(self, backend, recorder, raw, profile, make_busy, make_backend,
                 enforces_readonly):
        self.enforces_readonly = enforces_readonly
        self.backend = backend
        self.recorder = recorder
        self.raw = raw
        self.profile = profile
        self.make_busy = make_busy
        self.make_backend = make_backend

    @property
    def pool(self):
        return self.backend.pool

    async def names(self):
        """
        Every dataset and snapshot in the pool with its guid: what must not
        change outside our namespace.
        """
        out = await self.raw.run(["zfs", "get", "-H", "-p", "-r", "-o", "name,value",
                                  "guid", self.pool])
        return sorted(out.decode("utf-8").splitlines())

    async def prop(self, name, key):
        out = await self.raw.run(["zfs", "get", "-H", "-p", "-o", "value", key, name])
        return out.decode("utf-8").strip()


def _id():
    return str(uuid.uuid4())


def make_istoragebackend_tests(make_harness):
    """
    :param make_harness: ``callable(TestCase) -> Harness`` that registers
        its own cleanup.
    :return: a ``TestCase`` subclass to use as a base class.
    """

    class IStorageBackendTests(TestCase):
        """
        Conformance tests for ``IStorageBackend`` providers.
        """

        def setUp(self):
            self.harness = make_harness(self)
            self.backend = self.harness.backend

        def write(self, dataset_id, name, data):
            path = self.backend.path(dataset_id).child(name).path
            with open(path, "wb") as handle:
                handle.write(data)

        def read(self, dataset_id, name):
            with open(self.backend.path(dataset_id).child(name).path, "rb") as handle:
                return handle.read()

        def test_interface(self):
            """
            The backend provides ``IStorageBackend``.
            """
            self.assertTrue(verifyObject(IStorageBackend, self.backend))

        async def test_start(self):
            """
            ``start`` detects the implementation and is idempotent.
            """
            capabilities = await self.backend.start()
            self.assertIsInstance(capabilities, Capabilities)
            self.assertEqual(capabilities.implementation, self.harness.profile)
            self.assertEqual(await self.backend.start(), capabilities)

        async def test_create(self):
            """
            ``create`` makes a dataset owned by and writable on this node,
            mounted at ``path(dataset_id)``, with no snapshots.
            """
            dataset_id = _id()
            dataset = await self.backend.create(dataset_id, maximum_size=64 * MiB)
            self.assertEqual(
                (dataset.dataset_id, dataset.owner, dataset.writable, dataset.maximum_size,
                 dataset.mountpoint, dataset.mounted, list(dataset.snapshots)),
                (dataset_id, self.backend.node_uuid, True, 64 * MiB,
                 self.backend.path(dataset_id).path, True, []))
            state = await self.backend.discover()
            self.assertEqual(state.datasets[dataset_id], dataset)

        async def test_create_is_writable(self):
            """
            Data written to a new dataset's path reads back.
            """
            dataset_id = _id()
            await self.backend.create(dataset_id)
            self.write(dataset_id, "hello", b"world")
            self.assertEqual(self.read(dataset_id, "hello"), b"world")

        async def test_create_existing(self):
            """
            ``create`` of an existing dataset fails with ``DatasetExists``,
            changing nothing.
            """
            dataset_id = _id()
            await self.backend.create(dataset_id)
            before = await self.backend.discover()
            with self.assertRaises(DatasetExists) as caught:
                await self.backend.create(dataset_id)
            self.assertIn(dataset_id, str(caught.exception))
            self.assertEqual(before, await self.backend.discover())

        async def test_create_invalid_id(self):
            """
            A dataset id that is not a lowercase UUID is refused before any
            command runs.
            """
            await self.backend.start()
            self.harness.recorder.commands[:] = []
            for bad in ["", "x", "-r", "../etc", "a b", _id().upper(), _id() + "\n",
                        "$(id)", _id() + "@snap", _id() + "/x"]:
                with self.assertRaises(InvalidDatasetId):
                    await self.backend.create(bad)
            self.assertEqual(self.harness.recorder.commands, [])

        async def test_create_invalid_size(self):
            """
            A maximum size that is not a positive whole number of bytes, or
            less than 1 MiB, is refused before any command runs.
            """
            await self.backend.start()
            self.harness.recorder.commands[:] = []
            for bad in [0, -1, 1.5, "10G", True, 1024]:
                with self.assertRaises(ConfigError):
                    await self.backend.create(_id(), maximum_size=bad)
            self.assertEqual(self.harness.recorder.commands, [])

        async def test_create_over_foreign(self):
            """
            ``create`` over a same-named dataset we do not manage fails with
            ``NotManaged`` and leaves it alone.
            """
            dataset_id = _id()
            await self.backend.start()
            await self.harness.raw.run(
                ["zfs", "create", "%s/%s" % (self.harness.pool, dataset_id)])
            before = await self.harness.names()
            with self.assertRaises(NotManaged):
                await self.backend.create(dataset_id)
            self.assertEqual(before, await self.harness.names())

        async def test_create_mount_root_inside_dataset(self):
            """
            A mount root inside one of our datasets' mountpoints (directly,
            deeper, or through a symbolic link) is refused before anything is
            created, naming that dataset; ``clone`` too.
            """
            outer = _id()
            await self.backend.create(outer)
            await self.backend.snapshot(outer, "s1")
            outer_path = self.backend.path(outer).path
            os.symlink(outer_path, os.path.abspath(self.mktemp()))
            link = os.path.abspath(self.mktemp())
            os.symlink(outer_path, link)
            before = await self.harness.names()
            for root in [outer_path, os.path.join(outer_path, "sub", "deeper"),
                         os.path.join(link, "sub")]:
                backend = self.harness.make_backend(mount_root=root)
                with self.assertRaises(MountRootInsideDataset) as caught:
                    await backend.create(_id())
                message = str(caught.exception)
                self.assertIn("inside the mountpoint %s of flocker-zfs dataset %s"
                              % (outer_path, outer), message)
                self.assertIn("Fix: Use a mount root outside every flocker-zfs dataset",
                              message)
                with self.assertRaises(MountRootInsideDataset):
                    await backend.clone(outer, "s1", _id())
            self.assertEqual(before, await self.harness.names())

        async def test_create_mount_fails(self):
            """
            When ``zfs create`` makes the dataset but cannot mount it (here:
            the mount root became immutable, so its directory cannot be made),
            the dataset is destroyed again and the error says why: a failed
            create changes nothing; ``clone`` too.
            """
            source = _id()
            await self.backend.create(source)
            await self.backend.snapshot(source, "s1")
            before = await self.harness.names()
            root = self.backend.mount_root.path
            if subprocess.run(["chattr", "+i", root], capture_output=True).returncode != 0:
                raise SkipTest("chattr +i is not supported on %s" % (root,))
            self.addCleanup(subprocess.run, ["chattr", "-i", root], capture_output=True)
            dataset_id = _id()
            with self.assertRaises(MountFailed) as caught:
                await self.backend.create(dataset_id)
            message = str(caught.exception)
            self.assertIn("dataset %s could not be mounted at %s/%s (cannot mount"
                          % (dataset_id, root, dataset_id), message)
            self.assertIn("it was destroyed again, so nothing changed", message)
            self.assertIn("Fix: Make the mount root a writable directory", message)
            with self.assertRaises(MountFailed):
                await self.backend.clone(source, "s1", _id())
            self.assertEqual(before, await self.harness.names())

        async def test_discover_ignores_foreign(self):
            """
            Discovery reports only managed datasets; a look-alike without our
            properties is listed as ignored.
            """
            await self.backend.start()
            mine = _id()
            other = _id()
            pool = self.harness.pool
            await self.backend.create(mine)
            await self.harness.raw.run(["zfs", "create", "%s/%s" % (pool, other)])
            await self.harness.raw.run(["zfs", "create", "%s/other dataset" % (pool,)])
            state = await self.backend.discover()
            self.assertEqual((sorted(state.datasets), list(state.ignored)),
                             ([mine], ["%s/%s" % (pool, other)]))

        async def test_discover_constant_commands(self):
            """
            Discovery runs one command whatever the number of datasets and
            snapshots.
            """
            for _ in range(4):
                dataset_id = _id()
                await self.backend.create(dataset_id)
                await self.backend.snapshot(dataset_id)
            self.harness.recorder.commands[:] = []
            state = await self.backend.discover()
            self.assertEqual((len(state.datasets), len(self.harness.recorder.commands)), (4, 1))

        async def test_snapshot(self):
            """
            ``snapshot`` takes named and generated snapshots, listed oldest
            first with distinct guids.
            """
            dataset_id = _id()
            await self.backend.create(dataset_id)
            first = await self.backend.snapshot(dataset_id, "first")
            second = await self.backend.snapshot(dataset_id)
            dataset = await self.backend.get(dataset_id)
            self.assertEqual([s.name for s in dataset.snapshots], ["first", second.name])
            self.assertTrue(second.name.startswith("flocker-"))
            self.assertNotEqual(first.guid, second.guid)
            self.assertTrue(all(s.managed for s in dataset.snapshots))

        async def test_snapshot_existing(self):
            """
            A second snapshot of the same name fails with ``DatasetExists``.
            """
            dataset_id = _id()
            await self.backend.create(dataset_id)
            await self.backend.snapshot(dataset_id, "s")
            with self.assertRaises(DatasetExists):
                await self.backend.snapshot(dataset_id, "s")

        async def test_snapshot_invalid_name(self):
            """
            Snapshot names that could be read as options or break the name
            are refused before any command.
            """
            dataset_id = _id()
            await self.backend.create(dataset_id)
            self.harness.recorder.commands[:] = []
            for bad in ["-r", "", "a@b", "a/b", "a b", "x" * 65, "%recv", ".hidden"]:
                with self.assertRaises(InvalidName):
                    await self.backend.snapshot(dataset_id, bad)
            self.assertEqual(self.harness.recorder.commands, [])

        async def test_snapshot_missing(self):
            """
            Snapshotting a dataset that does not exist fails with
            ``DatasetNotFound``.
            """
            await self.backend.start()
            with self.assertRaises(DatasetNotFound):
                await self.backend.snapshot(_id())

        async def test_clone(self):
            """
            A clone holds the snapshot's data, is writable and independent of
            its origin.
            """
            source, copy = _id(), _id()
            await self.backend.create(source)
            self.write(source, "f", b"before")
            await self.backend.snapshot(source, "s")
            self.write(source, "f", b"after")
            cloned = await self.backend.clone(source, "s", copy)
            self.assertEqual((cloned.writable, cloned.origin, cloned.owner),
                             (True, "%s@s" % (source,), self.backend.node_uuid))
            self.assertEqual(self.read(copy, "f"), b"before")
            self.write(copy, "f", b"changed")
            self.assertEqual(self.read(source, "f"), b"after")

        async def test_clone_missing_snapshot(self):
            """
            Cloning from a snapshot that does not exist fails with
            ``DatasetNotFound`` and creates nothing.
            """
            source = _id()
            await self.backend.create(source)
            before = await self.backend.discover()
            with self.assertRaises(DatasetNotFound):
                await self.backend.clone(source, "nope", _id())
            self.assertEqual(before, await self.backend.discover())

        async def test_resize(self):
            """
            ``resize`` grows, shrinks and removes the maximum size.
            """
            dataset_id = _id()
            await self.backend.create(dataset_id, maximum_size=32 * MiB)
            sizes = []
            for size in [64 * MiB, 16 * MiB, None]:
                sizes.append((await self.backend.resize(dataset_id, size)).maximum_size)
            self.assertEqual(sizes, [64 * MiB, 16 * MiB, None])

        async def test_resize_below_used(self):
            """
            Shrinking below the space already used fails with
            ``QuotaTooSmall`` and leaves the size unchanged.
            """
            dataset_id = _id()
            await self.backend.create(dataset_id, maximum_size=64 * MiB)
            self.write(dataset_id, "big", os.urandom(3 * MiB))
            await self.backend.snapshot(dataset_id)  # settles space accounting
            with self.assertRaises(QuotaTooSmall) as caught:
                await self.backend.resize(dataset_id, 1 * MiB)
            self.assertIn(dataset_id, str(caught.exception))
            self.assertEqual((await self.backend.get(dataset_id)).maximum_size, 64 * MiB)

        async def test_read_only_reported(self):
            """
            A dataset made read-only is reported as not writable (zfs-fuse
            reports mounted read-only datasets as ``off (temporary)``), and
            where the implementation enforces it, writes fail.
            """
            dataset_id = _id()
            await self.backend.create(dataset_id)
            await self.harness.raw.run(["zfs", "set", "readonly=on",
                                        "%s/%s" % (self.harness.pool, dataset_id)])
            dataset = await self.backend.get(dataset_id)
            self.assertEqual((dataset.writable, dataset.mounted), (False, True))
            if self.harness.enforces_readonly:
                with self.assertRaises(OSError) as caught:
                    self.write(dataset_id, "f", b"x")
                self.assertEqual(caught.exception.errno, errno.EROFS)

        async def test_resize_replica(self):
            """
            ``resize`` of a dataset owned by another node fails with
            ``NotOwner``.
            """
            dataset_id = _id()
            await self.backend.create(dataset_id)
            await self.harness.raw.run(["zfs", "set", "flocker:owner=%s" % (_id(),),
                                        "%s/%s" % (self.harness.pool, dataset_id)])
            with self.assertRaises(NotOwner):
                await self.backend.resize(dataset_id, 64 * MiB)

        async def test_destroy(self):
            """
            ``destroy`` removes the dataset, its snapshots and its mountpoint.
            """
            dataset_id = _id()
            await self.backend.create(dataset_id)
            self.write(dataset_id, "f", b"data")
            await self.backend.snapshot(dataset_id)
            await self.backend.destroy(dataset_id)
            state = await self.backend.discover()
            self.assertNotIn(dataset_id, state.datasets)
            self.assertFalse(self.backend.path(dataset_id).exists())
            names = await self.harness.names()
            self.assertEqual([n for n in names if dataset_id in n], [])

        async def test_destroy_missing(self):
            """
            ``destroy`` of an unknown dataset fails with ``DatasetNotFound``.
            """
            await self.backend.start()
            with self.assertRaises(DatasetNotFound):
                await self.backend.destroy(_id())

        async def test_destroy_foreign(self):
            """
            ``destroy`` of a dataset we do not manage fails with
            ``NotManaged`` and destroys nothing.
            """
            dataset_id = _id()
            await self.backend.start()
            await self.harness.raw.run(
                ["zfs", "create", "%s/%s" % (self.harness.pool, dataset_id)])
            before = await self.harness.names()
            with self.assertRaises(NotManaged):
                await self.backend.destroy(dataset_id)
            self.assertEqual(before, await self.harness.names())

        async def test_destroy_foreign_snapshot(self):
            """
            ``destroy`` refuses when a snapshot we did not take exists, unless
            forced.
            """
            dataset_id = _id()
            await self.backend.create(dataset_id)
            await self.harness.raw.run(["zfs", "snapshot", "%s/%s@theirs"
                                        % (self.harness.pool, dataset_id)])
            with self.assertRaises(ForeignSnapshots) as caught:
                await self.backend.destroy(dataset_id)
            self.assertIn("theirs", str(caught.exception))
            self.assertIn(dataset_id, (await self.backend.discover()).datasets)
            await self.backend.destroy(dataset_id, force=True)
            self.assertNotIn(dataset_id, (await self.backend.discover()).datasets)

        async def test_destroy_busy(self):
            """
            ``destroy`` of a dataset in use fails with ``DatasetBusy`` and
            leaves it mounted with its data.
            """
            dataset_id = _id()
            await self.backend.create(dataset_id)
            self.write(dataset_id, "f", b"keep")
            undo = self.harness.make_busy(self.backend.path(dataset_id).path)
            try:
                with self.assertRaises(DatasetBusy):
                    await self.backend.destroy(dataset_id)
            finally:
                undo()
            dataset = await self.backend.get(dataset_id)
            self.assertEqual((dataset.mounted, self.read(dataset_id, "f")), (True, b"keep"))
            await self.backend.destroy(dataset_id)

        async def test_destroy_with_clone(self):
            """
            ``destroy`` of a dataset whose snapshot has a clone fails with
            ``HasDependentClones``, leaving both intact and mounted.
            """
            source, copy = _id(), _id()
            await self.backend.create(source)
            self.write(source, "f", b"keep")
            await self.backend.snapshot(source, "s")
            await self.backend.clone(source, "s", copy)
            with self.assertRaises(HasDependentClones):
                await self.backend.destroy(source)
            dataset = await self.backend.get(source)
            self.assertEqual((dataset.mounted, self.read(source, "f"), len(dataset.snapshots)),
                             (True, b"keep", 1))

        async def test_namespace_untouched(self):
            """
            A sequence of operations changes nothing outside our datasets.
            """
            await self.backend.start()
            pool = self.harness.pool
            await self.harness.raw.run(["zfs", "create", "%s/home" % (pool,)])
            await self.harness.raw.run(["zfs", "snapshot", "%s/home@keep" % (pool,)])
            before = await self.harness.names()
            dataset_id, copy = _id(), _id()
            await self.backend.create(dataset_id, maximum_size=64 * MiB)
            await self.backend.snapshot(dataset_id, "s")
            await self.backend.clone(dataset_id, "s", copy)
            await self.backend.resize(dataset_id, 128 * MiB)
            await self.backend.destroy(copy)
            await self.backend.destroy(dataset_id)
            self.assertEqual(before, await self.harness.names())

        async def test_pool_root_prepared(self):
            """
            On a pool holding only our datasets, start-up makes the pool root
            read-only and unmountable, so received replicas start read-only.
            """
            await self.backend.start()
            self.assertEqual(
                (await self.harness.prop(self.harness.pool, "readonly"),
                 await self.harness.prop(self.harness.pool, "canmount")),
                ("on", "off"))

        async def test_missing_pool(self):
            """
            A backend for a pool that does not exist fails to start with
            ``PoolNotFound`` whose fix says how to create it.
            """
            backend = self.harness.make_backend(pool="nosuchpool%d" % (os.getpid(),))
            with self.assertRaises(PoolNotFound) as caught:
                await backend.start()
            self.assertIn("zpool create", str(caught.exception))

        async def test_mount_root_is_file(self):
            """
            A mount root that is a file fails start-up with
            ``MountRootError``.
            """
            path = os.path.abspath(self.mktemp())
            with open(path, "w"):
                pass
            backend = self.harness.make_backend(mount_root=path)
            with self.assertRaises(MountRootError):
                await backend.start()

        async def test_discover_result(self):
            """
            ``discover`` returns a ``PoolState`` for the backend's pool.
            """
            state = await self.backend.discover()
            self.assertIsInstance(state, PoolState)
            self.assertEqual(state.pool, self.harness.pool)

    return IStorageBackendTests
