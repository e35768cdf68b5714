# test-case-name: flocker_zfs.test.test_fakezfs
"""
A command-level fake of the ``zfs`` and ``zpool`` command-line tools.

:class:`FakeZFS` provides :class:`~flocker_zfs.interfaces.IRunner`: give it to
:class:`flocker_zfs.ZFSBackend` instead of a process runner and the real
command builders, parsers and error translation run on top of it (the
approach of treq's ``StubTreq``).  It answers argv the way zfs-fuse 0.7 or
OpenZFS 2.1 does (``profile``), with their exit statuses, stdout formats and
stderr wording, from pools held in memory: no root, no pool, no processes.

Datasets that are mounted are real directories, so code under test can
write files into them; see :mod:`flocker_zfs._fakedisk` for the rules.  The
responsibilities are split: :mod:`._fakestate` (the tree, properties and
space), :mod:`._fakecli` (parsing and read-only commands), :mod:`._fakeops`
(commands that change state), :mod:`._fakestream` (send and receive) and
this module (the public class, mounting and failure injection).
"""

import os
import random
import time
import traceback

from eliot import start_action
from eliot.twisted import DeferredContext
from pyrsistent import pmap
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.python.failure import Failure
from zope.interface import implementer

from . import _fakedisk as disk
from . import _fakestate as st
from ._actions import COMMAND
from ._fakecli import Fail, ReadCommands, flags, parse, usage_error
from ._fakeops import WriteCommands
from ._fakeprops import OPENZFS, ZFS_FUSE
from ._fakestream import StreamCommands
from .errors import CommandFailed, CommandTimedOut, ZFSNotInstalled, error_for
from .interfaces import IRunner

__all__ = ["FakeZFS", "ZFS_FUSE", "OPENZFS"]

GIB = 1024 ** 3

#: What a zfs-fuse command prints when its daemon is not running.
_NO_DAEMON = (b"connect: No such file or directory\n"
              b"Please make sure that the zfs-fuse daemon is running.\n"
              b"internal error: failed to initialize ZFS library\n")

#: What an OpenZFS command prints when the kernel module is not loaded.
_NO_MODULE = (b"The ZFS modules are not loaded.\n"
              b"Try running '/sbin/modprobe zfs' as root to load them.\n")

#: Subcommands that exist in the real tools but are not emulated.
_NOT_EMULATED = {
    "zfs": ("promote", "upgrade", "userspace", "groupspace", "share", "unshare", "allow",
            "unallow", "bookmark", "diff", "program", "project", "projectspace", "load-key",
            "unload-key", "change-key", "redact", "wait"),
    "zpool": ("create", "destroy", "add", "remove", "iostat", "status", "online", "offline",
              "clear", "attach", "detach", "replace", "split", "scrub", "import", "export",
              "upgrade", "history", "set", "events", "labelclear", "initialize",
              "reguid", "reopen", "resilver", "sync", "trim", "wait", "checkpoint"),
}


def _matches(match, argv):
    """
    :param match: a callable taking argv, or a subcommand (``"send"``), or a
        command prefix (``"zpool list"``, ``"zfs get"``).
    :return: whether ``argv`` matches.
    """
    if callable(match):
        return bool(match(argv))
    words = match.split()
    if words and words[0] in ("zfs", "zpool"):
        return tuple(argv[:len(words)]) == tuple(words)
    return tuple(argv[1:1 + len(words)]) == tuple(words)


@implementer(IRunner)
class FakeZFS(ReadCommands, WriteCommands, StreamCommands):
    """
    Pools in memory answering ``zfs``/``zpool`` argv like real ZFS.

    :ivar str profile: ``"zfs-fuse"`` or ``"openzfs"``.
    :ivar list commands: every argv run (tuples), in order, including those
        that failed, hung or were refused.
    :ivar list cancelled: argv of commands whose ``Deferred`` was cancelled
        (or timed out) while hung.
    :ivar bool daemon_running: ``False`` makes every command fail as when the
        zfs-fuse daemon (OpenZFS: the kernel module) is not there.
    :ivar bool installed: ``False`` makes :meth:`run` fail with
        :class:`~flocker_zfs.errors.ZFSNotInstalled`.
    :ivar list internal_errors: tracebacks of bugs inside the fake (each also
        failed its command with status 70); tests can assert it stays empty.

    Known differences from real ZFS (see also the test modules' lists):

    - Writes cannot be refused: ``readonly=on`` only chmods the files
      (root ignores that), ``refquota`` and the pool size are checked only
      when ZFS would check them (``set``, ``snapshot``, ``receive``).
    - Space is computed from file bytes plus a fixed per-dataset overhead,
      not from blocks; snapshots' ``used`` counts whole files.
    - Streams are the fake's own format; real streams are not understood.
    - zfs-fuse's transient "dataset is busy" races (just after an unmount)
      are not emulated: inject them with :meth:`fail_next`.
    - After a zfs-fuse receive into a mounted dataset its whole directory
      keeps the old content until it is mounted again; really only names
      looked up before (and files changed in place without changing size)
      stay stale, and a listing shows the new names.
    - Lists that real ZFS prints in on-disk hash order (dependents, newer
      snapshots) come out in name or creation order.
    - Volumes, bookmarks, ``promote``, ``-R`` streams, ``send -I`` and
      delegation are not emulated; using them says so (exit status 2).
    """

    def __init__(self, profile=ZFS_FUSE, seed=0, clock=None):
        """
        :param str profile: ``"zfs-fuse"`` or ``"openzfs"``.
        :param int seed: seeds the guids, so runs are repeatable.
        :param clock: an ``IReactorTime`` for creation times and for
            :meth:`hang` timeouts; ``None`` uses the system time and never
            times out.
        """
        if profile not in (ZFS_FUSE, OPENZFS):
            raise ValueError("profile must be %r or %r, not %r" % (ZFS_FUSE, OPENZFS, profile))
        self.profile = profile
        self.commands = []
        self.cancelled = []
        self.daemon_running = True
        self.installed = True
        self.internal_errors = []
        self._random = random.Random(seed)
        self._clock = clock
        self._state = st.FakeState()
        self._mounts = {}
        self._busy = set()
        self._failures = []
        self._hangs = []

    # -- public API -----------------------------------------------------------

    def add_pool(self, name, size=GIB, mountpoint="none"):
        """
        Create a pool (like ``zpool create -m MOUNTPOINT NAME``).

        :param str name: the pool's name.
        :param int size: its size in bytes.
        :param str mountpoint: the root dataset's ``mountpoint``; the default
            ``"none"`` mounts nothing.  A path is created and used for real.
        :raises ValueError: the pool exists.
        """
        if name in self._state.pools:
            raise ValueError("pool %r already exists" % (name,))
        pool = st.FakePool(name=name, size=size, guid=self._guid())
        root = st.FakeDataset(name=name, kind=st.FILESYSTEM, guid=self._guid(), createtxg=1,
                              creation=self._now(), local=pmap({"mountpoint": mountpoint}))
        self._state = self._state.transform(["pools", name], pool).with_dataset(root)
        if mountpoint.startswith("/"):
            self._mount(name)

    def pools(self):
        """
        :return: the names of the pools, sorted.
        """
        return sorted(self._state.pools)

    def snapshot_state(self):
        """
        :return: the whole state as an immutable, comparable
            :class:`~flocker_zfs._fakestate.FakeState` (with the content of
            mounted datasets read from disk now).
        """
        self._sync()
        return self._state

    def mounted_path(self, name):
        """
        :return: the directory where dataset ``name`` is mounted, or ``None``.
        """
        record = self._mounts.get(name)
        return None if record is None else record.path

    def set_busy(self, name, busy=True):
        """
        Make unmounting and destroying ``name`` fail as when a process has
        its working directory inside it (ZFS's "busy" wording).
        """
        if busy:
            self._busy.add(name)
        else:
            self._busy.discard(name)

    def fail_next(self, match, status=1, stderr=b"", stdout=b""):
        """
        Make the next command matching ``match`` fail without running.

        :param match: a subcommand (``"snapshot"``), a command prefix
            (``"zpool list"``) or a callable taking argv.
        :param int status: its exit status.
        :param stderr: what it prints on stderr (``str`` or ``bytes``).
        """
        if isinstance(stderr, str):
            stderr = stderr.encode("utf-8")
        self._failures.append((match, status, stdout, stderr))

    def hang(self, match):
        """
        Make every command matching ``match`` (as for :meth:`fail_next`) never
        finish: :meth:`run` returns a ``Deferred`` that fires only when it is
        cancelled (its argv is then added to :attr:`cancelled`) or, with a
        ``clock``, fails with ``CommandTimedOut`` after ``timeout`` seconds.
        The command does not run.
        """
        self._hangs.append(match)

    def unhang(self, match):
        """
        Undo :meth:`hang` for ``match``.
        """
        self._hangs = [m for m in self._hangs if m != match]

    def unmount_all(self):
        """
        Unmount every mounted dataset (deepest first), keeping its content in
        memory and removing the directories the fake created.  For a test's
        cleanup; busy datasets are unmounted too.
        """
        for name in sorted(self._mounts, key=lambda n: -len(self._mounts[n].path)):
            self._unmount(name, force=True)

    # -- IRunner ----------------------------------------------------------------

    def run(self, argv, errors=(), timeout=None):
        """
        Run a command, as :class:`~flocker_zfs.interfaces.IRunner` says.

        :return: ``Deferred`` firing with stdout (``bytes``) on status 0, else
            failing with the :class:`~flocker_zfs.errors.ZFSError` that
            :func:`~flocker_zfs.errors.error_for` picks from stderr.
        """
        try:
            argv = tuple(str(arg) for arg in argv)
        except Exception:
            return fail(CommandFailed(argv=(), status=70, stderr=b"FakeZFS: argv is not a list"))
        with start_action(action_type=COMMAND, argv=list(argv)).context() as action:
            d = DeferredContext(self._run(argv, errors, timeout))

            def succeeded(stdout):
                """Log the outcome as the real runner does."""
                action.add_success_fields(status=0, duration=0.0, stdout_bytes=len(stdout))
                return stdout
            d.addCallback(succeeded)
            return d.addActionFinish()

    def _run(self, argv, errors, timeout):
        """Run ``argv`` for :meth:`run`, applying the failure injection."""
        try:
            self.commands.append(argv)
            if not self.installed:
                return fail(ZFSNotInstalled(
                    argv=argv, status=127,
                    stderr=("%s: command not found (FakeZFS.installed is False)"
                            % (argv[0] if argv else "zfs",)).encode("utf-8")))
            if any(_matches(match, argv) for match in self._hangs):
                return self._hung(argv, timeout)
            status, stdout, stderr = self._execute(argv)
        except Exception:
            status, stdout, stderr = self._internal_error(argv)
        if status == 0:
            return succeed(stdout)
        return fail(error_for(argv, status, stderr, errors))

    def _hung(self, argv, timeout):
        """A Deferred that never fires on its own; records its cancellation."""
        d = Deferred(lambda _: self.cancelled.append(argv))
        if timeout is not None and self._clock is not None:
            def timed_out(result, seconds):
                """Turn the timeout's cancellation into ``CommandTimedOut``."""
                if isinstance(result, Failure) and result.check(CancelledError):
                    return Failure(CommandTimedOut(
                        argv=argv, status=-9,
                        stderr=("killed after %g seconds" % (seconds,)).encode("ascii")))
                return result
            d.addTimeout(timeout, self._clock, onTimeoutCancel=timed_out)
        return d

    def execute(self, argv):
        """
        Run a command synchronously: the pure core of :meth:`run`.

        :return: ``(status, stdout, stderr)`` (``int``, ``bytes``, ``bytes``).
        """
        argv = tuple(str(arg) for arg in argv)
        self.commands.append(argv)
        return self._execute(argv)

    def send_stream(self, argv):
        """
        Run ``zfs send ...`` and return the stream (the fake's own format).

        :return: ``bytes``.
        :raises ZFSError: the typed error for a failed send.
        """
        status, stdout, stderr = self.execute(argv)
        if status != 0:
            raise error_for(tuple(argv), status, stderr)
        return stdout

    def receive_stream(self, argv, data):
        """
        Run ``zfs receive ...`` with ``data`` on its stdin (``run`` has no stdin).

        :return: ``(status, stdout, stderr)``.
        """
        argv = tuple(str(arg) for arg in argv)
        self.commands.append(argv)
        return self._execute(argv, stdin=data)

    # -- dispatch ---------------------------------------------------------------

    def _execute(self, argv, stdin=b""):
        """Run ``argv`` after injected failures; catches every exception."""
        try:
            for index, (match, status, stdout, stderr) in enumerate(self._failures):
                if _matches(match, argv):
                    del self._failures[index]
                    return status, stdout, stderr
            if not self.daemon_running:
                return 1, b"", _NO_DAEMON if self.profile == ZFS_FUSE else _NO_MODULE
            result = self._dispatch(argv, stdin)
            if isinstance(result, bytes):
                return 0, result, b""
            return result
        except Fail as failure:
            return failure.status, failure.stdout, failure.stderr
        except Exception:
            return self._internal_error(argv)

    def _internal_error(self, argv):
        """Record the current exception as a bug of the fake; status 70."""
        text = traceback.format_exc()
        self.internal_errors.append(text)
        message = "FakeZFS internal error running %r (a bug in the fake):\n%s" % (
            " ".join(argv), text)
        return 70, b"", message.encode("utf-8", "replace")

    def _dispatch(self, argv, stdin):
        """Route ``argv`` to the ``_zfs_<command>``/``_zpool_<command>`` method."""
        program = argv[0].rsplit("/", 1)[-1] if argv else ""
        if program not in ("zfs", "zpool"):
            return 127, b"", ("FakeZFS only emulates zfs and zpool, not %r\n"
                              % (program,)).encode("utf-8")
        if len(argv) < 2:
            raise usage_error(self.profile, program, None, "missing command")
        command, args = argv[1], list(argv[2:])
        aliases = {"recv": "receive", "umount": "unmount", "snap": "snapshot"}
        command = aliases.get(command, command) if program == "zfs" else command
        handler = getattr(self, "_%s_%s" % (program, command.replace("-", "_")), None)
        if handler is None:
            if command in _NOT_EMULATED[program]:
                raise Fail(2, "FakeZFS does not emulate '%s %s'\n" % (program, command))
            raise usage_error(self.profile, program, None,
                              "unrecognized command '%s'" % (command,))
        if command == "receive":
            return handler(args, stdin)
        return handler(args)

    # -- helpers shared by the commands ------------------------------------------

    def _guid(self):
        """A new non-zero 64-bit guid from the seeded generator."""
        return self._random.getrandbits(64) or 1

    def _now(self):
        """The current time in whole seconds (the clock's, if given)."""
        return int(self._clock.seconds() if self._clock is not None else time.time())

    def _txg(self):
        """The next transaction group number."""
        txg = self._state.txg + 1
        self._state = self._state.set(txg=txg)
        return txg

    def _put(self, dataset):
        """Store ``dataset`` in the state."""
        self._state = self._state.with_dataset(dataset)

    def _skip(self, name):
        """The mountpoints of other datasets nested inside ``name``'s."""
        path = self._mounts[name].path.rstrip("/") + "/"
        return frozenset(r.path for n, r in self._mounts.items()
                         if n != name and r.path.startswith(path))

    def _sync(self):
        """Read the content of every mounted dataset from disk into the state."""
        for name in list(self._mounts):
            self._put(self._state.datasets[name].set(content=self._read_mounted(name)[0]))

    def _read_mounted(self, name):
        """
        :return: ``(content, on disk)`` of mounted ``name``: what is on disk,
            or for a stale view, the dataset's content with what was written
            on disk since (which becomes the view).
        """
        record = self._mounts[name]
        on_disk = disk.read(record.path, self._skip(name))
        if record.view is None:
            return on_disk, on_disk
        content = disk.merged(self._state.datasets[name].content, record.view, on_disk)
        record.view = on_disk
        return content, on_disk

    def _busy_message(self, path):
        """What unmounting a busy ``path`` prints in this profile."""
        if self.profile == ZFS_FUSE:
            return ("umount: %s: target is busy.\ncannot unmount '%s': umount failed: "
                    "umount child process failed\n" % (path, path))
        return "cannot unmount '%s': pool or dataset is busy\n" % (path,)

    def _mount(self, name):
        """
        Mount a filesystem whose mountpoint is a path: create the directory
        and write the content there.

        :raises Fail: the directory cannot be used.
        """
        dataset = self._state.datasets[name]
        path = st.mountpoint(self._state, name)
        try:
            created = disk.prepare(path)
        except disk.DiskError as error:
            raise Fail(1, "cannot mount '%s': %s\n" % (path, error))
        disk.write(path, dataset.content)
        self._mounts[name] = disk.MountRecord(path, created)
        self._put(dataset.set(mounted=True))
        self._apply_readonly([name])

    def _unmount(self, name, force=False):
        """
        Unmount: keep the content in memory, delete it from disk and remove
        the directories the fake created.

        :raises Fail: the dataset is busy (or a nested dataset is mounted).
        """
        record = self._mounts[name]
        nested = self._skip(name)
        if not force and (name in self._busy or nested):
            raise Fail(1, self._busy_message(record.path))
        if record.modes is not None:
            disk.restore_modes(record.modes)
            record.modes = None
        try:
            content, on_disk = self._read_mounted(name)
        except disk.DiskError as error:
            raise Fail(1, "cannot unmount '%s': %s\n" % (record.path, error))
        disk.clear(record.path, on_disk, nested)
        disk.remove_created(record.created)
        del self._mounts[name]
        self._put(self._state.datasets[name].set(content=content, mounted=False))

    def _set_content(self, name, content, stale=False):
        """
        Replace a filesystem's content (rollback, receive), in place if
        mounted; with ``stale`` (a zfs-fuse receive) a mounted directory keeps
        showing what it showed (its readers' cached view) until remounted.
        """
        record = self._mounts.get(name)
        if record is not None and stale:
            if record.view is None:
                record.view = disk.read(record.path, self._skip(name))
        elif record is not None:
            record.view = None
            if record.modes is not None:
                disk.restore_modes(record.modes)
                record.modes = None
            nested = self._skip(name)
            disk.clear(record.path, disk.read(record.path, nested), nested)
            disk.write(record.path, content)
            self._apply_readonly([name])
        self._put(self._state.datasets[name].set(content=content))

    def _apply_readonly(self, names):
        """Best-effort ``readonly``: chmod mounted datasets to match the property."""
        for name in names:
            record = self._mounts.get(name)
            if record is None:
                continue
            wanted = st.effective(self._state, name, "readonly") == "on"
            if wanted and record.modes is None:
                record.modes = disk.make_readonly(record.path, self._skip(name))
            elif not wanted and record.modes is not None:
                disk.restore_modes(record.modes)
                record.modes = None

    def _can_automount(self, name):
        """Whether ZFS would mount ``name`` by itself (create, receive, remount)."""
        dataset = self._state.datasets[name]
        return (dataset.kind == st.FILESYSTEM and not dataset.partial and not dataset.mounted
                and st.effective(self._state, name, "canmount") == "on"
                and st.mountpoint(self._state, name).startswith("/"))

    def _unmount_all_of(self, names, force=False):
        """
        Unmount the mounted ones among ``names``, deepest first; if one
        cannot be, remount those already unmounted and fail.

        :return: the names that were mounted.
        """
        mounted = [n for n in names if n in self._mounts]
        mounted.sort(key=lambda n: -len(self._mounts[n].path))
        done = []
        for name in mounted:
            try:
                self._unmount(name, force)
            except Fail:
                for again in reversed(done):
                    self._mount(again)
                raise
            done.append(name)
        return mounted

    def _remount(self, names, errors):
        """Mount ``names`` (shallowest first), collecting failures in ``errors``."""
        for name in sorted(names, key=lambda n: n.count("/")):
            if name in self._state.datasets and self._can_automount(name):
                try:
                    self._mount(name)
                except Fail as failure:
                    errors.append(failure.stderr.decode("utf-8"))

    def _zfs_mount(self, args):
        """``zfs mount`` (list) or ``zfs mount filesystem``."""
        options, operands = parse(self.profile, "zfs", "mount", args,
                                  "vo:O" if self._fuse else "vo:Ofl", "a")
        if not operands:
            lines = ["%-30s  %s\n" % (n, self._mounts[n].path) for n in sorted(self._mounts)]
            return "".join(lines).encode("utf-8")
        if len(operands) > 1:
            raise usage_error(self.profile, "zfs", "mount", "too many arguments")
        name = operands[0]
        dataset = self._need(name, (st.FILESYSTEM,))
        if dataset.mounted:
            raise Fail(1, "cannot mount '%s': filesystem already mounted\n" % (name,))
        if st.effective(self._state, name, "canmount") == "off":
            raise Fail(1, "cannot mount '%s': 'canmount' property is set to 'off'\n" % (name,))
        where = st.mountpoint(self._state, name)
        if where == "legacy":
            raise Fail(1, "cannot mount '%s': legacy mountpoint\nuse %s to mount this "
                       "filesystem\n" % (name, "mount(1M)" if self._fuse else "mount(8)"))
        if where == "none":
            raise Fail(1, "cannot mount '%s': no mountpoint set\n" % (name,))
        self._mount(name)
        return b""

    def _zfs_unmount(self, args):
        """``zfs unmount [-f] filesystem|mountpoint``"""
        options, operands = parse(self.profile, "zfs", "unmount", args,
                                  "f" if self._fuse else "fu", "a")
        if not operands:
            raise usage_error(self.profile, "zfs", "unmount", "missing filesystem argument")
        if len(operands) > 1:
            raise usage_error(self.profile, "zfs", "unmount", "too many arguments")
        name = operands[0]
        if name.startswith("/"):
            found = [n for n, r in self._mounts.items() if r.path == name.rstrip("/")]
            if not found:
                reason = ("not a ZFS filesystem" if os.path.exists(name)
                          else "No such file or directory")
                raise Fail(1, "cannot unmount '%s': %s\n" % (name, reason))
            name = found[0]
        dataset = self._need(name, (st.FILESYSTEM,))
        if not dataset.mounted:
            raise Fail(1, "cannot unmount '%s': not currently mounted\n" % (name,))
        # zfs-fuse's forced unmount detaches even a busy filesystem; OpenZFS
        # on Linux still gets EBUSY from the kernel.
        self._unmount(name, force=self._fuse and "f" in flags(options))
        return b""
