"""
Real-tier tests of behaviour only OpenZFS 2.x has: exact-number listings
(``zfs list -p``), ``zfs send -nP`` size estimates, hold listings
(``zfs holds -H``), resume tokens (an interrupted ``zfs receive -s``
continued with ``zfs send -t``, by hand and by a push over real ssh),
bookmarks, and the fake ZFS's ``"openzfs"`` profile compared with the real
thing (the command script of :mod:`.test_fakezfs_real` and the hypothesis
differential run of :mod:`.test_differential`).

They run in the OpenZFS tier (``tools/test-openzfs``, see
``docs/openzfs-tier.rst``).  On zfs-fuse they are **skipped, even under
CI=true**: they are the only real-tier tests allowed to skip there, and the
skip message says so.  Without root or a working ZFS at all they behave like
every other real-tier test: skipped, or failed under ``CI=true``.
"""

import hashlib
import os
import re
import subprocess
import uuid

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SkipTest, TestCase

from .. import _commands as commands
from .._backend import ZFSBackend
from .._replication import Replicator
from ..errors import TransferFailed
from ..model import OPENZFS
from ..names import dataset_name, snapshot_name
from ..testing import FakeZFS, make_fake_backend
from . import realzfs, test_differential, test_fakezfs_real, test_replication_real

MiB = 1024 * 1024

#: Why these tests skip on zfs-fuse.
ZFS_FUSE_SKIP = (
    "OpenZFS-only test: this machine's ZFS is zfs-fuse (no 'zfs version'), which has no "
    "'zfs list -p', 'zfs send -nP', resume tokens, bookmarks or 'zfs holds'. Skipped even "
    "under CI=true (only the OpenZFS-only tests may be); run them on OpenZFS with "
    "tools/test-openzfs (docs/openzfs-tier.rst)")

_openzfs = None     # the 'zfs version' answer, once asked


def require_openzfs():
    """
    Make sure the real ZFS here is OpenZFS.

    :return: ``(zfs, zpool)``, the commands' absolute paths.
    :raises SkipTest: on zfs-fuse, also under ``CI=true`` (:data:`ZFS_FUSE_SKIP`);
        without root or a working ZFS, as :func:`realzfs.require_real_zfs`
        (which fails under ``CI=true`` instead).
    """
    global _openzfs
    paths = realzfs.require_real_zfs()
    if _openzfs is None:
        result = subprocess.run([paths[0], "version"], capture_output=True,
                                stdin=subprocess.DEVNULL, timeout=60)
        _openzfs = (result.returncode == 0
                    and re.search(rb"^zfs-\d", result.stdout, re.MULTILINE) is not None)
    if not _openzfs:
        raise SkipTest(ZFS_FUSE_SKIP)
    return paths


def _run(argv, data=None, check=True):
    """
    Run a ``zfs``/``zpool`` command line (blocking: test code only).

    :return: ``(status, stdout, stderr)`` as ``bytes``.
    """
    result = subprocess.run(argv, input=data, capture_output=True, timeout=300,
                            env=dict(os.environ, LC_ALL="C",
                                     PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"),
                            stdin=None if data is not None else subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise AssertionError("%r exited with %d: %r" % (argv, result.returncode, result.stderr))
    return result.returncode, result.stdout, result.stderr


def _digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


#: ``zfs holds -H`` time stamps: ``Sat Nov 28 00:40 2026``.
_HOLD_TIME = re.compile(r"\A[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d \d{4}\Z")


class _Twins(object):
    """
    The same dataset operations on a real OpenZFS pool and on a fake
    ``"openzfs"`` pool of the same name, through the real backend code.
    """

    def __init__(self, case):
        self.zfs = require_openzfs()[0]
        self.mount_root = realzfs.make_mount_root(case)
        self.pool = realzfs.make_pool(case)
        self.node_uuid = str(uuid.uuid4())
        self.real = ZFSBackend(reactor, self.pool, self.mount_root, self.node_uuid)
        self.fake, self.fake_zfs = make_fake_backend(
            os.path.abspath(case.mktemp()), pool=self.pool, profile="openzfs",
            node_uuid=self.node_uuid)
        case.addCleanup(self.fake_zfs.unmount_all)

    async def both(self, method, *args):
        """:return: ``(real result, fake result)`` of a backend method."""
        return (await getattr(self.real, method)(*args),
                await getattr(self.fake, method)(*args))

    def write(self, dataset_id, name, data):
        for backend in (self.real, self.fake):
            backend.path(dataset_id).child(name).setContent(data)

    def real_run(self, argv, data=None, check=True):
        return _run([self.zfs if argv[0] == "zfs" else argv[0]] + list(argv[1:]), data, check)

    def fake_run(self, argv):
        return self.fake_zfs.execute(list(argv))


class ListingAndEstimateTests(TestCase):
    """
    Exact numbers, send estimates, holds and bookmarks on real OpenZFS; the
    fake's ``"openzfs"`` profile prints the same shapes.
    """

    timeout = 600

    def setUp(self):
        return Deferred.fromCoroutine(self._setUp())

    async def _setUp(self):
        self.twins = _Twins(self)
        self.dataset_id = str(uuid.uuid4())
        self.name = dataset_name(self.twins.pool, self.dataset_id)
        await self.twins.both("create", self.dataset_id, 16 * MiB)
        self.twins.write(self.dataset_id, "data", os.urandom(MiB))
        await self.twins.both("snapshot", self.dataset_id, "s1")
        self.twins.write(self.dataset_id, "more", os.urandom(256 * 1024))
        await self.twins.both("snapshot", self.dataset_id, "s2")

    def assert_same_shape(self, argv, real_out, fake_out):
        """
        Real and fake stdout are the same once the values that differ
        between two pools are blanked (as in :mod:`.test_fakezfs_real`).
        """
        self.assertEqual(test_fakezfs_real.normalise(argv, fake_out.decode("utf-8")),
                         test_fakezfs_real.normalise(argv, real_out.decode("utf-8")), argv)

    async def test_capabilities(self):
        """
        The backend detects OpenZFS with every capability zfs-fuse lacks.
        """
        caps = await self.twins.real.start()
        self.assertEqual(
            (caps.implementation, caps.exact_list, caps.resume_tokens, caps.holds,
             caps.hold_listing, caps.send_estimate, caps.bookmarks, caps.receive_properties),
            (OPENZFS, True, True, True, True, True, True, True))
        self.assertTrue(re.match(r"\A2\.\d+\.\d+", caps.version), caps.version)

    def test_list_exact_numbers(self):
        """
        ``zfs list -H -p`` prints exact byte counts: the refquota is the size
        asked for, ``used`` agrees with ``zfs get -H -p``, every number column
        is an integer; the fake prints the same rows.
        """
        argv = ["zfs", "list", "-H", "-p", "-o", "name,used,referenced,available,refquota",
                "-r", self.twins.pool]
        _, real_out, _ = self.twins.real_run(argv)
        status, fake_out, _ = self.twins.fake_run(argv)
        self.assertEqual(status, 0)
        rows = {line.split("\t")[0]: line.split("\t")[1:]
                for line in real_out.decode("utf-8").splitlines()}
        for name, numbers in rows.items():
            self.assertTrue(all(n.isdigit() for n in numbers), (name, numbers))
        self.assertEqual(rows[self.name][3], str(16 * MiB))
        _, used, _ = self.twins.real_run(["zfs", "get", "-H", "-p", "-o", "value", "used",
                                          self.name])
        self.assertEqual(rows[self.name][0], used.decode("ascii").strip())
        self.assertTrue(int(rows[self.name][1]) >= MiB, rows[self.name])
        self.assert_same_shape(argv, real_out, fake_out)

    def test_send_estimate(self):
        """
        ``zfs send -nP`` (full and incremental) prints ``full``/
        ``incremental`` and ``size`` lines whose number is close to the real
        stream's length; the fake prints the same lines.
        """
        s1 = snapshot_name(self.twins.pool, self.dataset_id, "s1")
        s2 = snapshot_name(self.twins.pool, self.dataset_id, "s2")
        for argv, first in [(["zfs", "send", "-nP", s1], ["full", s1]),
                            (["zfs", "send", "-nP", "-i", s1, s2], ["incremental", s1, s2])]:
            _, real_out, _ = self.twins.real_run(argv)
            lines = [line.split("\t") for line in real_out.decode("utf-8").splitlines()]
            self.assertEqual([lines[0][:-1], lines[-1][0]], [first, "size"], real_out)
            self.assertEqual(lines[0][-1], lines[-1][1], real_out)
            estimate = int(lines[-1][1])
            _, stream, _ = self.twins.real_run(argv[:2] + argv[3:])
            self.assertTrue(0.5 * len(stream) <= estimate <= 2 * len(stream) + 65536,
                            (argv, estimate, len(stream)))
            status, fake_out, _ = self.twins.fake_run(argv)
            self.assertEqual(status, 0)
            self.assert_same_shape(argv, real_out, fake_out)

    def test_holds_listing(self):
        """
        ``zfs holds -H`` lists a hold as name, tag and a local time; a held
        snapshot cannot be destroyed; after release the listing is empty.
        The fake answers the same.
        """
        s2 = snapshot_name(self.twins.pool, self.dataset_id, "s2")
        tag = "flocker-" + str(uuid.uuid4())
        for argv in (["zfs", "hold", tag, s2],):
            self.twins.real_run(argv)
            self.assertEqual(self.twins.fake_run(argv)[0], 0)
        argv = ["zfs", "holds", "-H", s2]
        _, real_out, _ = self.twins.real_run(argv)
        [row] = [line.split("\t") for line in real_out.decode("utf-8").splitlines()]
        self.assertEqual(row[:2], [s2, tag])
        self.assertTrue(_HOLD_TIME.match(row[2]), row)
        status, fake_out, _ = self.twins.fake_run(argv)
        self.assertEqual(status, 0)
        self.assert_same_shape(argv, real_out, fake_out)
        status, _, stderr = self.twins.real_run(["zfs", "destroy", s2], check=False)
        self.assertNotEqual(status, 0, "a held snapshot was destroyed")
        self.twins.real_run(["zfs", "release", tag, s2])
        self.assertEqual(self.twins.real_run(argv)[1], b"")
        self.assertEqual(self.twins.fake_run(["zfs", "release", tag, s2])[0], 0)
        self.assertEqual(self.twins.fake_run(argv)[1], b"")

    async def test_bookmarks(self):
        """
        The pool has the bookmarks feature the backend detected, and a
        bookmark works as an incremental source after its snapshot is gone.
        """
        caps = await self.twins.real.start()
        self.assertTrue(caps.bookmarks)
        s1 = snapshot_name(self.twins.pool, self.dataset_id, "s1")
        s2 = snapshot_name(self.twins.pool, self.dataset_id, "s2")
        mark = self.name + "#b1"
        self.twins.real_run(["zfs", "bookmark", s1, mark])
        _, out, _ = self.twins.real_run(["zfs", "list", "-H", "-o", "name", "-t", "bookmark",
                                         "-r", self.name])
        self.assertEqual(out.decode("utf-8").split(), [mark])
        copy = dataset_name(self.twins.pool, str(uuid.uuid4()))
        _, full, _ = self.twins.real_run(["zfs", "send", s1])
        self.twins.real_run(["zfs", "receive", "-u", copy], data=full)
        self.twins.real_run(["zfs", "destroy", s1])
        _, stream, _ = self.twins.real_run(["zfs", "send", "-i", mark, s2])
        self.twins.real_run(["zfs", "receive", "-u", copy], data=stream)
        _, out, _ = self.twins.real_run(["zfs", "list", "-H", "-o", "name", "-t", "snapshot",
                                         "-r", copy])
        self.assertEqual(out.decode("utf-8").split(), [copy + "@s1", copy + "@s2"])


class ResumeTokenTests(TestCase):
    """
    An interrupted ``zfs receive -s`` leaves a token; ``zfs send -t``
    continues from it; ``zfs receive -A`` discards it.  The library's parser
    of the token's target reads the real ``zfs send -n -v -t`` output.
    """

    timeout = 600

    def setUp(self):
        self.zfs = require_openzfs()[0]
        self.mount_root = realzfs.make_mount_root(self)
        self.pool = realzfs.make_pool(self)
        self.source = self.pool + "/src"
        _run([self.zfs, "create", "-o", "mountpoint=" + self.mount_root + "/src",
              self.source])
        with open(os.path.join(self.mount_root, "src", "data"), "wb") as handle:
            handle.write(os.urandom(6 * MiB))
        _run([self.zfs, "snapshot", self.source + "@s1"])
        self.stream = _run([self.zfs, "send", self.source + "@s1"])[1]

    def interrupted(self, target):
        """
        Receive the first 3 MB of the stream with ``-s``: it fails and leaves
        ``target`` with a resume token.

        :return: the token.
        """
        status, _, stderr = _run([self.zfs, "receive", "-s", "-u", target],
                                 data=self.stream[:3 * MiB], check=False)
        self.assertEqual(status, 1, stderr)
        token = _run([self.zfs, "get", "-H", "-p", "-o", "value", "receive_resume_token",
                      target])[1].decode("ascii").strip()
        self.assertTrue(commands.is_resume_token(token), token)
        return token

    def test_resume(self):
        """
        ``send -t TOKEN`` sends only the rest, and the result is the whole
        snapshot, byte-identical; the token is gone afterwards.
        """
        target = self.pool + "/dst"
        token = self.interrupted(target)
        argv = commands.send_resume_dry_run(token)
        out = _run([self.zfs] + argv[1:])[1]
        self.assertEqual(commands.parse_resume_target(argv, out), self.source + "@s1")
        rest = _run([self.zfs] + commands.send_resume(token)[1:])[1]
        self.assertTrue(len(rest) < len(self.stream) - MiB, (len(rest), len(self.stream)))
        _run([self.zfs, "receive", "-s", "-u", "-o", "mountpoint=" + self.mount_root + "/dst",
              target], data=rest)
        self.assertEqual(_run([self.zfs, "get", "-H", "-p", "-o", "value",
                               "receive_resume_token", target])[1], b"-\n")
        _run([self.zfs, "mount", target])
        self.addCleanup(_run, [self.zfs, "unmount", target], None, False)
        self.assertEqual(_digest(os.path.join(self.mount_root, "dst", "data")),
                         _digest(os.path.join(self.mount_root, "src", "data")))
        self.assertEqual(_run([self.zfs, "get", "-H", "-p", "-o", "value", "guid",
                               target + "@s1"])[1],
                         _run([self.zfs, "get", "-H", "-p", "-o", "value", "guid",
                               self.source + "@s1"])[1])

    def test_abort(self):
        """
        ``receive -A`` discards the partial state; a new dataset that
        existed only as partial state is gone with it.
        """
        target = self.pool + "/dst"
        self.interrupted(target)
        _run([self.zfs, "receive", "-A", target])
        status, _, stderr = _run([self.zfs, "list", target], check=False)
        self.assertEqual(status, 1, stderr)
        self.assertIn(b"does not exist", stderr)


class PushResumeTests(TestCase):
    """
    Replication between two real OpenZFS pools over private sshds with
    ``flocker-zfs peer-serve`` as forced command (the set-up of
    :mod:`.test_replication_real`): an interrupted full push resumes from
    the token, and the base snapshot is held for the peer.
    """

    timeout = 900

    def setUp(self):
        require_openzfs()
        self.a = test_replication_real._Node(self, "a")
        self.b = test_replication_real._Node(self, "b")
        self.dataset_id = str(uuid.uuid4())

    async def create(self, size):
        await self.a.backend.create(self.dataset_id)
        with open(self.a.path(self.dataset_id, "data"), "wb") as handle:
            handle.write(os.urandom(size))

    def truncating(self, node, limit):
        """
        A forced command serving ``node`` whose receives see only the first
        ``limit`` bytes of the stream, as when a connection drops.
        """
        serve = node.serve_command()
        return node.sshd.write_script(
            "truncating", "#!/bin/sh\ncase \"$SSH_ORIGINAL_COMMAND\" in\n"
            "  *' receive '*) head -c %d | %s;;\n  *) %s;;\nesac\n" % (limit, serve, serve))

    def holds(self, node, snapshot):
        """:return: ``[tag, ...]`` of ``zfs holds -H`` on a real snapshot."""
        zfs = realzfs.require_real_zfs()[0]
        out = _run([zfs, "holds", "-H", snapshot_name(node.pool, self.dataset_id, snapshot)])[1]
        return [line.split("\t")[1] for line in out.decode("utf-8").splitlines()]

    async def test_interrupted_push_resumes(self):
        """
        A full push cut off after 3 MB fails; B keeps partial state with a
        resume token and no writable copy; the next push resumes from the
        token (``resumed``, fewer bytes than the estimate of a full send)
        and the data arrive byte-identical.
        """
        zfs = realzfs.require_real_zfs()[0]
        await self.create(12 * MiB)
        self.b.serve(self.truncating(self.b, 3 * MiB))
        with self.assertRaises(TransferFailed):
            await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        token = _run([zfs, "get", "-H", "-p", "-o", "value", "receive_resume_token",
                      dataset_name(self.b.pool, self.dataset_id)])[1].decode("ascii").strip()
        self.assertTrue(commands.is_resume_token(token), token)
        copy = (await self.b.backend.discover()).datasets.get(self.dataset_id)
        self.assertFalse(copy is not None and copy.writable, copy)
        [snap] = (await self.a.backend.get(self.dataset_id)).snapshots
        estimate = int(_run([zfs, "send", "-nP", snapshot_name(
            self.a.pool, self.dataset_id, snap.name)])[1].decode("ascii").split()[-1])
        self.b.serve()
        result = await Replicator(self.a.backend, reactor).push(
            self.dataset_id, self.a.peer(self.b))
        self.assertTrue(result.resumed, result)
        self.assertEqual(result.snapshot, snap.name)
        self.assertTrue(result.bytes < estimate - MiB, (result.bytes, estimate))
        self.assertEqual(_digest(self.b.path(self.dataset_id, "data")),
                         _digest(self.a.path(self.dataset_id, "data")))
        self.assertEqual(_run([zfs, "get", "-H", "-p", "-o", "value", "receive_resume_token",
                               dataset_name(self.b.pool, self.dataset_id)])[1], b"-\n")

    async def test_base_held_for_peer(self):
        """
        After a push, the snapshot that is the peer's incremental base holds
        the tag ``flocker-<peer uuid>``, so it cannot be destroyed; the next
        push moves the hold to the new base.
        """
        zfs = realzfs.require_real_zfs()[0]
        await self.create(MiB)
        tag = "flocker-" + self.b.node_uuid
        first = await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        self.assertEqual(self.holds(self.a, first.snapshot), [tag])
        status, _, stderr = _run([zfs, "destroy", snapshot_name(
            self.a.pool, self.dataset_id, first.snapshot)], check=False)
        self.assertNotEqual(status, 0, "the peer's base snapshot was destroyed")
        with open(self.a.path(self.dataset_id, "more"), "wb") as handle:
            handle.write(b"more")
        second = await self.a.replicator.push(self.dataset_id, self.a.peer(self.b))
        self.assertEqual(second.base, first.snapshot)
        self.assertEqual(self.holds(self.a, second.snapshot), [tag])
        names = [s.name for s in (await self.a.backend.get(self.dataset_id)).snapshots]
        if first.snapshot in names:
            self.assertEqual(self.holds(self.a, first.snapshot), [])


class OpenZFSFakeComparisonTests(test_fakezfs_real.RealZFSFuseComparisonTests):
    """
    The command script of :mod:`.test_fakezfs_real` on real OpenZFS and on
    ``FakeZFS(profile="openzfs")``: same statuses, stderr and stdout (up to
    the values that differ between pools).
    """

    def setUp(self):
        require_openzfs()
        super().setUp()
        self.fake = FakeZFS(profile="openzfs")
        self.fake.add_pool(self.pool, size=256 * 1024 * 1024)
        self.addCleanup(self.fake.unmount_all)

    def test_script(self):
        """
        Every step gives the same observable result on both.  Unlike the
        zfs-fuse run, every differing step is reported, not only the first
        (later steps still run on both sides, whatever state they are in).
        """
        mismatches = ["%s:\n  real: %r\n  fake: %r" % (text.replace(self.pool, "POOL"), real, fake)
                      for text, real, fake in self.steps() if real != fake]
        self.assertEqual(self.fake.internal_errors, [])
        self.assertEqual(mismatches, [], "%d steps differ:\n%s"
                         % (len(mismatches), "\n".join(mismatches)))


class OpenZFSDifferentialTests(test_differential.DifferentialTests):
    """
    The hypothesis differential run of :mod:`.test_differential` against
    ``FakeZFS(profile="openzfs")``: random backend operation sequences give
    the same outcomes on real OpenZFS and on the fake's OpenZFS profile.
    """

    def setUp(self):
        require_openzfs()
        super().setUp()
        self.fake = FakeZFS(profile="openzfs")
        self.fake.add_pool(self.pool)
