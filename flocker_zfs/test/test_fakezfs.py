"""
Tests for :mod:`flocker_zfs._fakezfs`, the command-level fake ZFS.

Each test drives the fake through argv, as the library does, and checks what
a caller sees: exit status, stdout, stderr (wording from real zfs-fuse 0.7
and OpenZFS 2.1), files in mounted directories, and the state value.  The
comparison with real zfs-fuse and the replay of recorded real output are in
:mod:`flocker_zfs.test.test_fakezfs_real`, send and receive in
:mod:`flocker_zfs.test.test_fakezfs_stream`.
"""

import os

from twisted.internet.defer import CancelledError
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from .._fakezfs import FakeZFS
from ..errors import (
    CommandFailed, CommandTimedOut, DatasetBusy, DatasetExists, DatasetNotFound,
    HasDependentClones, OutOfSpace, PoolNotFound, QuotaTooSmall, ZFSNotInstalled,
    ZFSNotRunning)
from ..interfaces import IRunner

FUSE, OPENZFS = "zfs-fuse", "openzfs"


class FakeCase(SynchronousTestCase):
    """
    Helpers: a fake with pool ``p`` and a mount root under the test's temp
    directory; every test also checks that the fake had no internal error.
    """

    profile = FUSE

    def setUp(self):
        self.root = os.path.abspath(self.mktemp())
        self._fakes = []
        self.fake = self.make_fake(self.profile)

    def make_fake(self, profile):
        fake = FakeZFS(profile=profile, clock=Clock())
        fake.test_root = os.path.join(self.root, "fake%d" % (len(self._fakes),))
        self._fakes.append(fake)
        fake.add_pool("p")
        self.addCleanup(fake.unmount_all)
        self.addCleanup(lambda: self.assertEqual(fake.internal_errors, []))
        return fake

    def zfs(self, line, fake=None):
        """:return: ``(status, stdout, stderr)`` of ``zfs`` + ``line``."""
        return (fake or self.fake).execute(["zfs"] + line.split())

    def ok(self, line, fake=None):
        """Run a command that must succeed; :return: its stdout as ``str``."""
        status, out, err = self.zfs(line, fake)
        self.assertEqual((status, err), (0, b""), line)
        return out.decode("utf-8")

    def fails(self, line, fake=None):
        """Run a command that must fail; :return: ``(status, stderr str)``."""
        status, out, err = self.zfs(line, fake)
        self.assertNotEqual(status, 0, line)
        return status, err.decode("utf-8")

    def mnt(self, name, fake=None):
        """:return: a mountpoint path under the fake's own directory."""
        return os.path.join((fake or self.fake).test_root, name)

    def create_mounted(self, name="p/a", extra="", fake=None):
        self.ok("create %s -o mountpoint=%s %s" % (extra, self.mnt(name, fake), name), fake)
        return self.mnt(name, fake)

    def write(self, path, data):
        with open(path, "wb") as handle:
            handle.write(data)

    def read(self, path):
        with open(path, "rb") as handle:
            return handle.read()


class RunnerTests(FakeCase):
    """``FakeZFS`` as an ``IRunner``."""

    def test_interface(self):
        """``FakeZFS`` provides ``IRunner``."""
        self.assertTrue(verifyObject(IRunner, FakeZFS()))

    def test_success(self):
        """``run`` fires with stdout on exit status 0 and records the argv."""
        result = self.successResultOf(self.fake.run(["zpool", "list", "-H", "-o", "name", "p"]))
        self.assertEqual((result, self.fake.commands), (b"p\n", [("zpool", "list", "-H", "-o",
                                                                  "name", "p")]))

    def test_failure_typed(self):
        """``run`` fails with the error ``error_for`` picks from the stderr."""
        failure = self.failureResultOf(self.fake.run(["zfs", "destroy", "p/nope"]),
                                       DatasetNotFound)
        self.assertEqual(failure.value.stderr, b"cannot open 'p/nope': dataset does not exist\n")

    def test_missing_pool(self):
        """``zpool list`` of a missing pool fails with ``PoolNotFound``."""
        d = self.fake.run(["zpool", "list", "-H", "-o", "name,health", "nope"])
        failure = self.failureResultOf(d, PoolNotFound)
        self.assertEqual(failure.value.stderr, b"cannot open 'nope': no such pool\n")

    def test_internal_error(self):
        """A bug inside the fake fails the Deferred with status 70, never raises."""
        self.fake._dispatch = lambda argv, stdin: 1 / 0
        failure = self.failureResultOf(self.fake.run(["zfs", "list"]), CommandFailed)
        self.assertEqual(failure.value.status, 70)
        self.assertIn(b"ZeroDivisionError", failure.value.stderr)
        self.fake.internal_errors[:] = []

    def test_other_program(self):
        """A program other than zfs/zpool fails with status 127."""
        failure = self.failureResultOf(self.fake.run(["ssh", "host"]), CommandFailed)
        self.assertEqual(failure.value.status, 127)

    def test_bad_profile(self):
        """An unknown profile is refused at construction."""
        self.assertRaises(ValueError, FakeZFS, profile="solaris")


class FailureInjectionTests(FakeCase):
    """Failures a user's test can inject."""

    def test_daemon_not_running(self):
        """``daemon_running = False`` gives zfs-fuse's daemon message to every command."""
        self.fake.daemon_running = False
        failure = self.failureResultOf(self.fake.run(["zfs", "list"]), ZFSNotRunning)
        self.assertEqual(failure.value.stderr, b"connect: No such file or directory\nPlease "
                         b"make sure that the zfs-fuse daemon is running.\ninternal error: "
                         b"failed to initialize ZFS library\n")

    def test_module_not_loaded(self):
        """With OpenZFS the message is the one for an unloaded kernel module."""
        fake = self.make_fake(OPENZFS)
        fake.daemon_running = False
        self.failureResultOf(fake.run(["zpool", "list"]), ZFSNotRunning)

    def test_not_installed(self):
        """``installed = False`` fails ``run`` with ``ZFSNotInstalled``, still recorded."""
        self.fake.installed = False
        self.failureResultOf(self.fake.run(["zfs", "list"]), ZFSNotInstalled)
        self.assertEqual(self.fake.commands, [("zfs", "list")])

    def test_fail_next_once(self):
        """``fail_next`` fails the next matching command once, without running it."""
        self.fake.fail_next("create", 1, "cannot create 'p/a': out of space\n")
        self.failureResultOf(self.fake.run(["zfs", "create", "p/a"]), OutOfSpace)
        self.assertEqual(self.fake.snapshot_state().datasets.keys(), {"p"})
        self.successResultOf(self.fake.run(["zfs", "create", "p/a"]))

    def test_fail_next_prefix_and_predicate(self):
        """``fail_next`` matches a command prefix or a predicate on argv."""
        self.fake.fail_next("zpool list", 2, b"boom\n")
        self.fake.fail_next(lambda argv: "p/b" in argv, 1, b"nope\n")
        self.assertEqual(self.zfs("create p/b")[0], 1)
        self.assertEqual(self.fake.execute(["zpool", "list"])[0], 2)

    def test_hang_cancel(self):
        """A hung command never fires until cancelled; the cancel is recorded."""
        self.fake.hang("snapshot")
        d = self.fake.run(["zfs", "snapshot", "p@s"])
        self.assertNoResult(d)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.fake.cancelled, [("zfs", "snapshot", "p@s")])
        self.assertNotIn("p@s", self.fake.snapshot_state().datasets)
        self.fake.unhang("snapshot")
        self.successResultOf(self.fake.run(["zfs", "snapshot", "p@s"]))

    def test_hang_timeout(self):
        """With a clock, a hung command fails with ``CommandTimedOut`` after its timeout."""
        clock = Clock()
        fake = FakeZFS(clock=clock)
        fake.hang("zpool list")
        d = fake.run(["zpool", "list"], timeout=5)
        clock.advance(4)
        self.assertNoResult(d)
        clock.advance(1)
        self.failureResultOf(d, CommandTimedOut)


class UsageTests(FakeCase):
    """Bad command lines behave like the real CLI."""

    def test_unknown_command(self):
        """An unknown subcommand exits 2 with the top-level usage."""
        status, err = self.fails("bogus")
        self.assertEqual(status, 2)
        self.assertTrue(err.startswith("unrecognized command 'bogus'\nusage: zfs command"))

    def test_invalid_option(self):
        """An unknown option exits 2 with the subcommand's usage."""
        status, err = self.fails("destroy -Z p")
        self.assertEqual((status, err.splitlines()[:3]), (
            2, ["invalid option 'Z'", "usage:", "\tdestroy [-rRf] <filesystem|volume>"]))

    def test_not_emulated(self):
        """A real option or command the fake lacks says so instead of pretending."""
        self.assertEqual(self.zfs("create -V 1G p/vol")[0:3:2],
                         (2, b"FakeZFS does not emulate 'zfs create -V'\n"))
        self.assertEqual(self.zfs("promote p/a")[0], 2)

    def test_version(self):
        """``zfs version`` is unknown to zfs-fuse and answers on OpenZFS."""
        status, err = self.fails("version")
        self.assertEqual(status, 2)
        self.assertTrue(err.startswith("unrecognized command 'version'\n"))
        self.assertEqual(self.ok("version", self.make_fake(OPENZFS)),
                         "zfs-2.1.11-1+deb12u1\nzfs-kmod-2.1.11-1+deb12u1\n")

    def test_options_after_operands(self):
        """Options may follow operands, as with GNU getopt."""
        self.assertEqual(self.ok("list p -H -o name"), "p\n")


class CreateTests(FakeCase):
    """``zfs create``."""

    def test_create_mounts(self):
        """A created filesystem with a mountpoint path is mounted on a real directory."""
        path = self.create_mounted()
        self.assertTrue(os.path.isdir(path))
        self.assertEqual(self.fake.mounted_path("p/a"), path)

    def test_exists(self):
        """Creating an existing dataset fails with ``dataset already exists``."""
        self.ok("create p/a")
        self.assertEqual(self.fails("create p/a"),
                         (1, "cannot create 'p/a': dataset already exists\n"))
        self.failureResultOf(self.fake.run(["zfs", "create", "p/a"]), DatasetExists)

    def test_missing_parent(self):
        """A missing parent fails; ``-p`` creates it."""
        self.assertEqual(self.fails("create p/x/y"),
                         (1, "cannot create 'p/x/y': parent does not exist\n"))
        self.ok("create -p p/x/y")
        self.ok("create -p p/x/y")
        self.assertEqual(self.ok("list -H -r -o name p"), "p\np/x\np/x/y\n")

    def test_bad_names(self):
        """Names are checked with ZFS's wording."""
        self.assertEqual(self.fails("create p/bad*name")[1],
                         "cannot create 'p/bad*name': invalid character '*' in name\n")
        self.assertEqual(self.fails("create p")[1], "cannot create 'p': missing dataset name\n")
        self.assertEqual(self.fails("create q/a")[1], "cannot create 'q/a': no such pool 'q'\n")

    def test_bad_properties(self):
        """Invalid properties and values are refused before anything is created."""
        self.assertEqual(self.fails("create -o nope=1 p/a")[1],
                         "cannot create 'p/a': invalid property 'nope'\n")
        self.assertEqual(self.fails("create -o readonly=maybe p/a")[1],
                         "cannot create 'p/a': 'readonly' must be one of 'on | off'\n")
        self.assertEqual(self.fails("create -o refquota=1K p/a")[1],
                         "cannot create 'p/a': out of space\n")
        self.assertEqual(list(self.fake.snapshot_state().datasets), ["p"])

    def test_non_empty_mountpoint(self):
        """A non-empty mountpoint directory is refused; the dataset is still created."""
        os.makedirs(self.mnt("p/a"))
        self.write(os.path.join(self.mnt("p/a"), "mine"), b"x")
        status, err = self.fails("create -o mountpoint=%s p/a" % (self.mnt("p/a"),))
        self.assertEqual(err, "cannot mount '%s': directory is not empty\nfilesystem "
                         "successfully created, but not mounted\n" % (self.mnt("p/a"),))
        self.assertEqual(self.read(os.path.join(self.mnt("p/a"), "mine")), b"x")


class GetTests(FakeCase):
    """``zfs get``."""

    def test_sources(self):
        """Values and sources: local, inherited, default, none; unset user properties."""
        self.ok("create -o a:b=1 p/x")
        self.ok("create p/x/y")
        out = self.ok("get -H -o name,property,value,source a:b,mountpoint,readonly,c:d,type "
                      "p/x/y")
        self.assertEqual(out, "p/x/y\ta:b\t1\tinherited from p/x\n"
                              "p/x/y\tmountpoint\tnone\tinherited from p\n"
                              "p/x/y\treadonly\toff\tdefault\np/x/y\tc:d\t-\t-\n"
                              "p/x/y\ttype\tfilesystem\t-\n")

    def test_recursive_order(self):
        """``-r`` lists a filesystem, then its snapshots, then its children."""
        self.ok("create -p p/x/y")
        self.ok("snapshot p/x@s1")
        self.ok("snapshot p/x@s0")
        out = self.ok("get -H -p -r -o name,value refquota p/x")
        self.assertEqual(out, "p/x\t0\np/x@s1\t-\np/x@s0\t-\np/x/y\t0\n")

    def test_mountpoint_inherited_path(self):
        """An inherited mountpoint path gets the child's name appended."""
        self.ok("create -o mountpoint=%s p/x" % (self.mnt("x"),))
        self.ok("create p/x/y")
        self.assertEqual(self.ok("get -H -o value mountpoint p/x/y"), self.mnt("x/y") + "\n")
        self.assertTrue(os.path.isdir(self.mnt("x/y")))

    def test_missing_and_invalid(self):
        """A missing dataset prints the others and exits 1; a bad property is usage."""
        status, out, err = self.zfs("get -H -o name,value type nope p")
        self.assertEqual((status, out, err),
                         (1, b"p\tfilesystem\n", b"cannot open 'nope': dataset does not exist\n"))
        status, err = self.fails("get -H nosuchprop p")
        self.assertTrue(err.startswith("bad property list: invalid property 'nosuchprop'\n"))

    def test_type_filter(self):
        """``get -t`` is refused by zfs-fuse and filters on OpenZFS."""
        self.assertTrue(self.fails("get -H -t snapshot guid p")[1].startswith(
            "invalid option 't'\nusage:\n\tget"))
        fake = self.make_fake(OPENZFS)
        self.ok("snapshot p@s", fake)
        self.assertEqual(self.ok("get -H -t snapshot -r -o name guid p", fake), "p@s\n")
        self.assertEqual(self.ok("get -H -t snapshot -o name guid p", fake), "p@s\n")

    def test_header_and_source_filter(self):
        """Without ``-H`` there is a padded header; ``-s`` filters on the source."""
        self.ok("set a:b=1 p")
        self.assertEqual(self.ok("get a:b p"), "NAME  PROPERTY  VALUE  SOURCE\n"
                                               "p     a:b       1      local\n")
        self.assertEqual(self.ok("get -H -s local -o property all p"), "mountpoint\na:b\n")


class PoolTests(FakeCase):
    """``zpool list`` and ``zpool get``."""

    def test_list(self):
        """``zpool list`` prints the pool's columns; a missing pool exits 1."""
        self.assertEqual(self.fake.execute(["zpool", "list", "-H", "-o", "name,size,health",
                                            "p"]), (0, b"p\t1G\tONLINE\n", b""))
        self.assertEqual(self.fake.execute(["zpool", "list", "-H", "nope"]),
                         (1, b"", b"cannot open 'nope': no such pool\n"))
        self.assertEqual(self.fake.pools(), ["p"])
        self.assertRaises(ValueError, self.fake.add_pool, "p")

    def test_get(self):
        """``zpool get``: zfs-fuse takes no options; OpenZFS has ``-H`` and features."""
        self.assertEqual(self.fake.execute(["zpool", "get", "version", "p"])[1],
                         b"NAME  PROPERTY  VALUE    SOURCE\np     version   23       default\n")
        status, out, err = self.fake.execute(["zpool", "get", "-H", "version", "p"])
        self.assertTrue(err.startswith(b"bad property list: invalid property '-H'\n"))
        fake = self.make_fake(OPENZFS)
        self.assertEqual(fake.execute(["zpool", "get", "-H", "-o", "value",
                                       "feature@bookmarks", "p"]), (0, b"enabled\n", b""))


class ListTests(FakeCase):
    """``zfs list``."""

    def test_default_columns(self):
        """The default columns, human-readable."""
        self.assertEqual(self.ok("list -H p"), "p\t112K\t1024M\t112K\tnone\n")

    def test_exact_numbers(self):
        """``list -p`` is refused by zfs-fuse and exact on OpenZFS."""
        self.assertEqual(self.fails("list -H -p p")[0], 2)
        out = self.ok("list -H -p -o name,used p", self.make_fake(OPENZFS))
        self.assertEqual(out, "p\t24576\n")

    def test_snapshots_sorted(self):
        """``-t snapshot -s createtxg -r`` lists snapshots oldest first."""
        self.ok("create p/b")
        self.ok("snapshot p/b@z")
        self.ok("snapshot p@a")
        self.assertEqual(self.ok("list -H -o name -t snapshot -s createtxg -r p"),
                         "p/b@z\np@a\n")
        self.assertEqual(self.ok("list -H -o name -t snapshot -S createtxg -r p"),
                         "p@a\np/b@z\n")

    def test_snapshots_of_filesystem(self):
        """``list -t snapshot FS`` is an error on zfs-fuse and lists them on OpenZFS."""
        self.assertEqual(self.fails("list -H -t snapshot p")[1], "cannot open 'p': operation "
                         "not applicable to datasets of this type\n")
        fake = self.make_fake(OPENZFS)
        self.ok("snapshot p@s", fake)
        self.assertEqual(self.ok("list -H -o name -t snapshot p", fake), "p@s\n")


class SetInheritTests(FakeCase):
    """``zfs set`` and ``zfs inherit``."""

    def test_two_properties_fuse(self):
        """zfs-fuse takes a second k=v as a dataset name but still sets the first."""
        self.ok("create p/a")
        self.assertEqual(self.fails("set a:b=1 canmount=on p/a"),
                         (1, "cannot open 'canmount=on': invalid dataset name\n"))
        self.assertEqual(self.ok("get -H -o value a:b p/a"), "1\n")

    def test_two_properties_openzfs(self):
        """OpenZFS sets several properties at once."""
        fake = self.make_fake(OPENZFS)
        self.ok("create p/a", fake)
        self.ok("set a:b=1 readonly=on p/a", fake)
        self.assertEqual(self.ok("get -H -o value a:b,readonly p/a", fake), "1\non\n")

    def test_errors(self):
        """Bad property names, values and read-only properties."""
        self.assertEqual(self.fails("set nope=2 p")[1],
                         "cannot set property for 'p': invalid property 'nope'\n")
        self.assertEqual(self.fails("set used=1 p")[1],
                         "cannot set property for 'p': 'used' is readonly\n")
        self.assertEqual(self.fails("set refquota=0 p")[1],
                         "cannot set property for 'p': use 'none' to disable quota/refquota\n")
        self.assertEqual(self.fails("set a:b=1 p/nope")[1],
                         "cannot open 'p/nope': dataset does not exist\n")

    def test_refquota(self):
        """``refquota`` below what is referenced fails with ``QuotaTooSmall``."""
        path = self.create_mounted()
        self.write(os.path.join(path, "f"), b"x" * 300000)
        self.failureResultOf(self.fake.run(["zfs", "set", "refquota=200K", "p/a"]),
                             QuotaTooSmall)
        self.ok("set refquota=1M p/a")
        self.assertEqual(self.ok("get -H -p -o value,source refquota p/a"), "1048576\tlocal\n")
        self.ok("set refquota=none p/a")
        self.assertEqual(self.ok("get -H -o value refquota p/a"), "none\n")

    def test_readonly_chmod(self):
        """``readonly=on`` makes the files read-only (best effort) and ``off`` restores."""
        path = self.create_mounted()
        self.write(os.path.join(path, "f"), b"data")
        self.ok("set readonly=on p/a")
        self.assertEqual(os.stat(os.path.join(path, "f")).st_mode & 0o777, 0o444)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o555)
        self.ok("set readonly=off p/a")
        self.assertEqual(os.stat(os.path.join(path, "f")).st_mode & 0o777, 0o644)

    def test_readonly_mounted_zfs_fuse(self):
        """
        zfs-fuse reports a mounted read-only dataset as ``readonly off``
        with source ``temporary`` (it mounts everything rw at the FUSE level),
        and the real value once unmounted; OpenZFS reports the real value.
        """
        self.create_mounted()
        self.ok("set readonly=on p/a")
        self.assertEqual(self.ok("get -H -o value,source readonly p/a"), "off\ttemporary\n")
        self.ok("unmount p/a")
        self.assertEqual(self.ok("get -H -o value,source readonly p/a"), "on\tlocal\n")
        fake = FakeZFS(profile="openzfs")
        fake.add_pool("p")
        self.addCleanup(fake.unmount_all)
        self.ok("create -o mountpoint=%s -o readonly=on p/a" % (self.mnt("o"),), fake)
        self.assertEqual(self.ok("get -H -o value,source readonly p/a", fake), "on\tlocal\n")

    def test_mountpoint_moves_content(self):
        """Changing the mountpoint remounts, carrying the files to the new directory."""
        path = self.create_mounted()
        self.write(os.path.join(path, "f"), b"data")
        self.ok("set mountpoint=%s p/a" % (self.mnt("b"),))
        self.assertFalse(os.path.exists(path))
        self.assertEqual(self.read(os.path.join(self.mnt("b"), "f")), b"data")
        self.ok("inherit mountpoint p/a")
        self.assertEqual((self.fake.mounted_path("p/a"), os.path.exists(self.mnt("b"))),
                         (None, False))

    def test_inherit(self):
        """``inherit`` removes a local value; ``-r`` does so below too."""
        self.ok("create -o a:b=1 -p p/x/y")
        self.ok("set a:b=2 p/x/y")
        self.ok("inherit -r a:b p/x")
        self.assertEqual(self.ok("get -H -o value,source a:b p/x/y"), "-\t-\n")
        self.assertEqual(self.fails("inherit refquota p"), (
            1, "'refquota' property cannot be inherited\nuse 'zfs set refquota=none' to clear\n"))
        self.assertEqual(self.fails("inherit used p"), (1, "used property is read-only\n"))


class MountTests(FakeCase):
    """``zfs mount`` and ``zfs unmount`` on real directories."""

    def test_unmount_keeps_content(self):
        """Unmount removes the directory it made; mount brings the files back."""
        path = self.create_mounted()
        os.makedirs(os.path.join(path, "d"))
        self.write(os.path.join(path, "d", "f"), b"data")
        self.ok("unmount p/a")
        self.assertFalse(os.path.exists(path))
        self.assertEqual(self.ok("get -H -o value mounted p/a"), "no\n")
        self.ok("mount p/a")
        self.assertEqual(self.read(os.path.join(path, "d", "f")), b"data")

    def test_existing_directory_kept(self):
        """An empty directory that existed before is emptied but not removed."""
        os.makedirs(self.mnt("p/a"))
        path = self.create_mounted()
        self.write(os.path.join(path, "f"), b"x")
        self.ok("unmount p/a")
        self.assertEqual(os.listdir(path), [])

    def test_messages(self):
        """Already mounted, not mounted, no mountpoint, canmount=off, snapshots."""
        self.create_mounted()
        self.ok("create p/b")
        self.ok("snapshot p/b@s")
        self.assertEqual(self.fails("mount p/a")[1],
                         "cannot mount 'p/a': filesystem already mounted\n")
        self.assertEqual(self.fails("unmount p/b")[1],
                         "cannot unmount 'p/b': not currently mounted\n")
        self.assertEqual(self.fails("mount p/b")[1], "cannot mount 'p/b': no mountpoint set\n")
        self.assertEqual(self.fails("mount p/b@s")[1], "cannot open 'p/b@s': operation not "
                         "applicable to datasets of this type\n")
        self.ok("set canmount=off p/a")
        self.assertEqual(self.fake.mounted_path("p/a"), None)
        self.assertEqual(self.fails("mount p/a")[1],
                         "cannot mount 'p/a': 'canmount' property is set to 'off'\n")

    def test_busy(self):
        """``set_busy`` makes unmount fail with each implementation's busy wording."""
        path = self.create_mounted()
        self.fake.set_busy("p/a")
        self.assertEqual(self.fails("unmount p/a")[1], "umount: %s: target is busy.\ncannot "
                         "unmount '%s': umount failed: umount child process failed\n"
                         % (path, path))
        self.failureResultOf(self.fake.run(["zfs", "destroy", "p/a"]), DatasetBusy)
        fake = self.make_fake(OPENZFS)
        self.create_mounted("p/b", fake=fake)
        fake.set_busy("p/b")
        self.assertEqual(self.fails("unmount p/b", fake)[1], "cannot unmount '%s': pool or "
                         "dataset is busy\n" % (self.mnt("p/b", fake),))

    def test_unmount_by_path_and_listing(self):
        """``zfs mount`` lists mounts; ``unmount`` takes a mountpoint too."""
        path = self.create_mounted()
        self.assertEqual(self.ok("mount"), "%-30s  %s\n" % ("p/a", path))
        self.ok("unmount " + path)
        self.assertEqual(self.ok("mount"), "")


class SnapshotTests(FakeCase):
    """``zfs snapshot``, ``rollback`` and ``clone`` capture and restore content."""

    def test_errors(self):
        """Existing, missing and badly named snapshots."""
        self.ok("snapshot p@s")
        self.assertEqual(self.fails("snapshot p@s")[1],
                         "cannot create snapshot 'p@s': dataset already exists\n")
        self.assertEqual(self.fails("snapshot p/nope@s")[1],
                         "cannot open 'p/nope': dataset does not exist\n")
        self.assertEqual(self.fails("snapshot p")[1],
                         "cannot snapshot 'p': missing '@' delimiter in snapshot name\n")
        self.assertEqual(self.fails("snapshot -o readonly=on p@t")[1],
                         "cannot snapshot 'p@t': this property can not be modified for "
                         "snapshots\n")

    def test_snapshot_rollback(self):
        """Rollback restores the files of the snapshot in the mounted directory."""
        path = self.create_mounted()
        self.write(os.path.join(path, "f"), b"one")
        self.ok("snapshot p/a@1")
        self.write(os.path.join(path, "f"), b"two")
        self.write(os.path.join(path, "g"), b"new")
        self.ok("rollback p/a@1")
        self.assertEqual(sorted(os.listdir(path)), ["f"])
        self.assertEqual(self.read(os.path.join(path, "f")), b"one")

    def test_rollback_newer(self):
        """Newer snapshots block a rollback (each wording); ``-r`` destroys them."""
        self.ok("snapshot p@1")
        self.ok("snapshot p@2")
        self.assertEqual(self.fails("rollback p@1")[1], "cannot rollback to 'p@1': more recent "
                         "snapshots exist\nuse '-r' to force deletion of the following "
                         "snapshots:\np@2\n")
        fake = self.make_fake(OPENZFS)
        self.ok("snapshot p@1", fake)
        self.ok("snapshot p@2", fake)
        self.assertEqual(self.fails("rollback p@1", fake)[1], "cannot rollback to 'p@1': more "
                         "recent snapshots or bookmarks exist\nuse '-r' to force deletion of "
                         "the following snapshots and bookmarks:\np@2\n")
        self.ok("rollback -r p@1")
        self.assertEqual(self.ok("list -H -t snapshot -o name -r p"), "p@1\n")

    def test_clone(self):
        """A clone starts from the snapshot's files and has it as origin."""
        path = self.create_mounted()
        self.write(os.path.join(path, "f"), b"one")
        self.ok("snapshot p/a@1")
        self.write(os.path.join(path, "f"), b"two")
        self.ok("clone -o mountpoint=%s p/a@1 p/c" % (self.mnt("c"),))
        self.assertEqual(self.read(os.path.join(self.mnt("c"), "f")), b"one")
        self.assertEqual(self.ok("get -H -o value,source origin p/c"), "p/a@1\t-\n")
        self.assertEqual(self.fails("clone p/a@nope p/d")[1],
                         "cannot open 'p/a@nope': dataset does not exist\n")
        self.assertEqual(self.fails("clone p/a@1 p/c")[1],
                         "cannot create 'p/c': dataset already exists\n")

    def test_space(self):
        """``used`` and ``referenced`` follow the bytes written and kept by snapshots."""
        path = self.create_mounted()
        self.write(os.path.join(path, "f"), b"x" * 10000)
        self.assertEqual(self.ok("get -H -p -o value referenced p/a"), "%d\n" % (114688 + 10000))
        self.ok("snapshot p/a@1")
        os.remove(os.path.join(path, "f"))
        self.assertEqual(self.ok("get -H -p -o value used p/a@1 p/a"),
                         "%d\n10000\n" % (114688 + 10000))


class DestroyRenameTests(FakeCase):
    """``zfs destroy`` and ``zfs rename``."""

    def test_children_and_clones(self):
        """Snapshots need ``-r``; clones block even ``-r`` with the clone list."""
        self.ok("create p/a")
        self.ok("snapshot p/a@1")
        self.ok("clone p/a@1 p/c")
        self.assertEqual(self.fails("destroy p/a")[1], "cannot destroy 'p/a': filesystem has "
                         "children\nuse '-r' to destroy the following datasets:\np/a@1\n")
        self.assertEqual(self.fails("destroy -r p/a")[1], "cannot destroy 'p/a': filesystem "
                         "has dependent clones\nuse '-R' to destroy the following datasets:\n"
                         "p/c\n")
        self.failureResultOf(self.fake.run(["zfs", "destroy", "p/a@1"]), HasDependentClones)
        self.ok("destroy -R p/a")
        self.assertEqual(list(self.fake.snapshot_state().datasets), ["p"])

    def test_held_snapshot(self):
        """A held snapshot is busy until released; zfs-fuse cannot list holds."""
        self.ok("snapshot p@1")
        self.ok("hold keep p@1")
        self.assertEqual(self.fails("hold keep p@1")[1],
                         "cannot hold 'p@1': tag already exists on this dataset\n")
        self.assertEqual(self.fails("destroy p@1")[1], "cannot destroy 'p@1': dataset is busy\n")
        self.assertEqual(self.zfs("holds -H p@1"),
                         (255, b"internal error: /usr/lib/zfs/pyzfs.py not found\n", b""))
        self.ok("release keep p@1")
        self.assertEqual(self.fails("release keep p@1")[1],
                         "cannot release 'keep' from 'p@1': no such tag on this dataset\n")
        self.ok("destroy p@1")

    def test_holds_openzfs(self):
        """OpenZFS lists holds and words its errors its own way."""
        fake = self.make_fake(OPENZFS)
        self.ok("snapshot p@1", fake)
        self.ok("hold keep p@1", fake)
        self.assertEqual(self.ok("holds -H -p p@1", fake).split("\t")[:2], ["p@1", "keep"])
        self.assertEqual(self.fails("destroy p@1", fake)[1],
                         "cannot destroy snapshot p@1: dataset is busy\n")
        self.assertEqual(self.fails("destroy p@2", fake)[1],
                         "could not find any snapshots to destroy; check snapshot names.\n")

    def test_rename_remounts(self):
        """Renaming a mounted filesystem moves it (and its inheriting children)."""
        self.ok("create -o mountpoint=%s p/a" % (self.mnt("top"),))
        self.ok("create p/a/b")
        self.write(os.path.join(self.mnt("top/b"), "f"), b"x")
        self.ok("snapshot p/a/b@1")
        self.ok("rename p/a p/z")
        self.assertEqual(self.ok("list -H -r -t all -o name p"), "p\np/z\np/z/b\np/z/b@1\n")
        self.assertEqual(self.read(os.path.join(self.mnt("top/b"), "f")), b"x")
        self.ok("rename p/z/b@1 2")
        self.assertEqual(self.fails("rename p/z p/z/y")[1], "cannot rename to 'p/z/y': New "
                         "dataset name cannot be a descendant of current dataset name\n")

    def test_destroy_missing(self):
        """Destroying a missing dataset fails with ``DatasetNotFound``."""
        self.assertEqual(self.fails("destroy p/nope")[1],
                         "cannot open 'p/nope': dataset does not exist\n")


class StateTests(FakeCase):
    """``snapshot_state`` gives comparable values."""

    def test_failed_command_changes_nothing(self):
        """A failing command leaves the state equal to before; a good one changes it."""
        path = self.create_mounted()
        self.write(os.path.join(path, "f"), b"x")
        before = self.fake.snapshot_state()
        self.fails("create p/a")
        self.fails("rename p/a p/nope/b")
        self.assertEqual(self.fake.snapshot_state(), before)
        self.write(os.path.join(path, "f"), b"y")
        self.assertNotEqual(self.fake.snapshot_state(), before)

    def test_deterministic(self):
        """The same seed and clock give the same guids and state."""
        one, two = self.make_fake(FUSE), self.make_fake(FUSE)
        for fake in (one, two):
            self.ok("create p/a", fake)
            self.ok("snapshot p/a@s", fake)
        self.assertEqual(one.snapshot_state(), two.snapshot_state())
