"""
Tests for ``flocker-zfs init`` (:mod:`flocker_zfs._init`) and its pure
helpers (:mod:`flocker_zfs._initsteps`), on the fake ZFS with stand-ins for
ssh-keygen and ssh-keyscan; every path is in a temporary directory.
"""

import base64
import hashlib
import hmac
import io
import json
import os
import shlex
import stat

from eliot.testing import assertHasAction, capture_logging
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from .. import _cli, _init
from .._actions import CLI_INIT
from .._initsteps import (
    HostKeyChanged, InitRefused, PublicKey, ToolFailed, ToolMissing, authorized_keys_line,
    decide_host_key, host_matches, key_refusal, parse_keyscan, parse_known_hosts,
    parse_pool_size, run_tool, split_authorized_line, validate_peer_from)
from ..errors import ConfigError, FlockerZFSError, InvalidName, ZFSNotInstalled, error_for
from ..interfaces import IRunner
from ..testing import FakeZFS
from .test_files import not_regular_files

MIB = 1024 * 1024


def fake_key(seed, key_type="ssh-ed25519", comment=""):
    """
    :return: a :class:`PublicKey` with a well-formed blob made from ``seed``.
    """
    name = key_type.encode("ascii")
    body = hashlib.sha256(seed.encode("utf-8")).digest()
    blob = (len(name).to_bytes(4, "big") + name + len(body).to_bytes(4, "big") + body)
    return PublicKey(key_type=key_type, data=base64.b64encode(blob).decode("ascii"),
                     comment=comment)


_PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n-----END OPENSSH PRIVATE KEY-----\n"


def write_fake_key_pair(path, key, passphrase=False):
    """
    Write a private key file (fake content that :class:`FakeSSHTools`
    understands) and its ``.pub``, as ssh-keygen would.
    """
    body = "%s %s %s%s" % (key.key_type, key.data, key.comment or "-",
                           " PASSPHRASE" if passphrase else "")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(_PRIVATE % (base64.b64encode(body.encode("utf-8")).decode("ascii"),))
    with open(path + ".pub", "w") as handle:
        handle.write(key.line() + "\n")


@implementer(IRunner)
class FakeSSHTools(object):
    """
    Stand-in for ``ssh-keygen`` (generate, ``-y``) and ``ssh-keyscan``.

    :ivar dict hosts: ``(host, port) -> [PublicKey]`` the hosts offer.
    :ivar list commands: every argv run.
    :ivar set missing: tools that are not installed (as ``ProcessRunner``
        reports an executable it cannot find).
    """

    def __init__(self):
        self.hosts = {}
        self.commands = []
        self.missing = set()
        self._made = 0

    def offer(self, host, port, *keys):
        self.hosts[(host, port)] = list(keys)

    def run(self, argv, errors=(), timeout=None):
        argv = [str(arg) for arg in argv]
        self.commands.append(tuple(argv))
        if argv[0] in self.missing:
            return fail(ZFSNotInstalled(argv=argv, status=127,
                                        stderr=b"%s: command not found" % (argv[0].encode(),)))
        if argv[1:] == ["-?"]:
            return fail(error_for(argv, 1, b"unknown option -- ?\nusage: %s ...\n"
                                  % (argv[0].encode(),)))
        try:
            stdout = getattr(self, "_" + argv[0].replace("-", "_"))(argv[1:])
        except _Exit as exit:
            return fail(error_for(argv, exit.status, exit.stderr))
        return succeed(stdout)

    def _ssh_keygen(self, args):
        path = args[args.index("-f") + 1]
        if "-y" in args:
            try:
                with open(path) as handle:
                    body = base64.b64decode(handle.read().splitlines()[1]).decode("utf-8")
            except (OSError, IndexError, ValueError):
                raise _Exit(255, b"Load key \"%s\": invalid format\n" % (path.encode(),))
            fields = body.split()
            if "PASSPHRASE" in fields:
                raise _Exit(255, b"Load key: incorrect passphrase supplied to decrypt "
                                 b"private key\n")
            return ("%s %s %s\n" % tuple(fields[:3])).encode("utf-8")
        if os.path.exists(path):
            raise _Exit(1, b"%s already exists.\nOverwrite (y/n)? " % (path.encode(),))
        self._made += 1
        comment = args[args.index("-C") + 1]
        write_fake_key_pair(path, fake_key("made-%d-%s" % (self._made, path), comment=comment))
        return b""

    def _ssh_keyscan(self, args):
        host, port = args[-1], int(args[args.index("-p") + 1])
        keys = self.hosts.get((host, port))
        if not keys:
            raise _Exit(1, b"")
        token = host if port == 22 else "[%s]:%d" % (host, port)
        return "".join("%s %s\n" % (token, key.text()) for key in keys).encode("utf-8")


class _Exit(Exception):
    def __init__(self, status, stderr):
        Exception.__init__(self, status, stderr)
        self.status, self.stderr = status, stderr


@implementer(IRunner)
class PoolMakingZFS(object):
    """
    :class:`FakeZFS` plus ``zpool create -m none NAME VDEV``, which the fake
    does not emulate: the pool appears if the file or device exists.
    """

    def __init__(self, fake):
        self.fake = fake

    def run(self, argv, errors=(), timeout=None):
        argv = [str(arg) for arg in argv]
        if argv[:2] != ["zpool", "create"]:
            return self.fake.run(argv, errors, timeout)
        self.fake.commands.append(tuple(argv))
        name, vdev = argv[-2], argv[-1]
        if name in self.fake.pools():
            return fail(error_for(argv, 1, b"cannot create '%s': pool already exists\n"
                                  % (name.encode(),)))
        if not os.path.exists(vdev):
            return fail(error_for(argv, 1, b"cannot open '%s': No such file or directory\n"
                                  % (vdev.encode(),)))
        self.fake.add_pool(name, size=os.path.getsize(vdev))
        return succeed(b"")


def build_parser():
    """
    The ``flocker-zfs`` argument parser, with init and doctor as the CLI
    registers them.
    """
    return _cli._parser(io.StringIO())


def run_command(case, argv, runner, tools, make_peer=None, advance=None, **attributes):
    """
    Run one ``init`` or ``doctor`` command line the way the dispatcher does.

    :param advance: seconds to move the clock on before the result is read.
    :param attributes: more attributes set on the options (test seams).
    :return: ``(status, stdout, stderr)``.
    """
    out, err = io.StringIO(), io.StringIO()
    options = build_parser().parse_args(argv)
    options.reactor = MemoryReactorClock()
    options.runner = runner
    options.tools = tools
    options.make_peer = make_peer
    options.err = err
    for name, value in attributes.items():
        setattr(options, name, value)
    d = Deferred.fromCoroutine(options.standalone(options, out, err))
    if advance is not None:
        options.reactor.advance(advance)

    def failed(failure):
        failure.trap(FlockerZFSError)
        err.write("flocker-zfs: error: %s\n" % (failure.value,))
        return 1
    d.addCallbacks(lambda status: 0 if status is None else status, failed)
    return case.successResultOf(d), out.getvalue(), err.getvalue()


class Node(object):
    """
    A node's paths in a temporary directory, and its fakes.
    """

    def __init__(self, case, pool="flocker"):
        self.base = os.path.abspath(case.mktemp())
        os.makedirs(self.base)
        self.pool = pool
        self.etc = os.path.join(self.base, "etc", "flocker")
        self.node_file = os.path.join(self.etc, "node.json")
        self.identity = os.path.join(self.etc, "id_rsa_flocker")
        self.known_hosts = os.path.join(self.etc, "known_hosts")
        self.pool_file = os.path.join(self.base, "var", "lib", "flocker", pool + ".img")
        self.mount_root = os.path.join(self.base, "mnt")
        self.authorized_keys = os.path.join(self.base, "root", ".ssh", "authorized_keys")
        self.program = os.path.join(self.base, "opt", "bin", "flocker-zfs")
        os.makedirs(os.path.dirname(self.program))
        with open(self.program, "w") as handle:
            handle.write("#!/bin/sh\n")
        os.chmod(self.program, 0o755)
        self.fake = FakeZFS(profile="zfs-fuse")
        self.zfs = PoolMakingZFS(self.fake)
        self.tools = FakeSSHTools()
        self.case = case

    def common(self):
        return ["--pool", self.pool, "--mount-root", self.mount_root,
                "--node-file", self.node_file]

    def init_argv(self, *extra):
        return (["init"] + self.common() + [
            "--config-dir", self.etc, "--ssh-identity", self.identity,
            "--ssh-known-hosts", self.known_hosts, "--pool-file", self.pool_file,
            "--pool-size", "128M", "--program", self.program] + list(extra))

    def init(self, *extra):
        return run_command(self.case, self.init_argv(*extra), self.zfs, self.tools)

    def files(self):
        """
        :return: ``{path: (mode, mtime_ns, content)}`` of every file under the base.
        """
        found = {}
        for top, dirs, names in os.walk(self.base):
            for name in dirs + names:
                path = os.path.join(top, name)
                info = os.stat(path)
                content = None
                if stat.S_ISREG(info.st_mode):
                    with open(path, "rb") as handle:
                        content = handle.read()
                found[path] = (stat.S_IMODE(info.st_mode), info.st_mtime_ns, content)
        return found

    def program_only(self):
        """:return: :meth:`files` of a node where init has not run."""
        return {path for path in self.files() if not path.startswith(
            os.path.dirname(os.path.dirname(self.program)))}


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


PEER_KEY = fake_key("peer-a-user-key", comment="flocker-zfs@peer-a")
HOST_KEY = fake_key("peer-b-host-key")


class InitTests(SynchronousTestCase):
    """
    Tests for ``flocker-zfs init``.
    """

    def setUp(self):
        self.node = Node(self)
        self.node.tools.offer("10.0.0.12", 2222, HOST_KEY, fake_key("b-rsa", "ssh-rsa"))

    def full(self, *extra):
        return self.node.init("--peer", "10.0.0.12:2222", "--peer-key", PEER_KEY.line(),
                              "--peer-from", "10.0.0.0/24,127.0.0.1",
                              "--install-authorized-keys", self.node.authorized_keys, *extra)

    def refused(self, *extra):
        """
        Run init with ``extra``: it must refuse with one line on stderr and
        change nothing (no file written, no pool made).

        :return: the error line.
        """
        node = self.node
        before, pools = node.files(), node.fake.pools()
        status, out, err = node.init(*extra)
        self.assertEqual((status, out, err.count("\n")), (1, "", 1), err)
        self.assertEqual((node.files(), node.fake.pools()), (before, pools))
        return err

    def test_fresh_node(self):
        """
        On a fresh node init creates the pool on a new sparse file, the
        identity, the key, known_hosts and authorized_keys, each with safe
        permissions, and records what it created.
        """
        node = self.node
        status, out, err = self.full()
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(node.fake.pools(), ["flocker"])
        self.assertIn(("zpool", "create", "-m", "none", "flocker", node.pool_file),
                      node.fake.commands)
        info = os.stat(node.pool_file)
        self.assertEqual((info.st_size, mode(node.pool_file)), (128 * MIB, 0o600))
        self.assertLess(info.st_blocks * 512, MIB, "the pool file is sparse")
        with open(node.node_file) as handle:
            node_uuid = json.load(handle)["uuid"]
        self.assertEqual((mode(node.etc), mode(node.identity)), (0o700, 0o600))
        with open(node.identity + ".pub") as handle:
            public = handle.read()
        self.assertTrue(public.startswith("ssh-ed25519 "))
        self.assertTrue(public.strip().endswith("flocker-zfs@" + node_uuid))
        with open(node.known_hosts) as handle:
            self.assertEqual(handle.read(), "[10.0.0.12]:2222 %s\n" % (HOST_KEY.text(),))
        self.assertEqual(mode(node.known_hosts), 0o644)
        self.assertEqual((mode(node.authorized_keys), mode(os.path.dirname(node.authorized_keys))),
                         (0o600, 0o700))
        with open(node.authorized_keys) as handle:
            [line] = handle.read().splitlines()
        options, key = split_authorized_line(line)
        self.assertEqual(key.text(), PEER_KEY.text())
        self.assertEqual(options[:2], [("restrict", None), ("from", "10.0.0.0/24,127.0.0.1")])
        self.assertEqual(shlex.split(dict(options)["command"]), [
            node.program, "peer-serve", "--pool", "flocker", "--mount-root", node.mount_root,
            "--node-file", node.node_file])
        state_path = os.path.join(node.etc, "init-state.json")
        self.assertEqual(mode(state_path), 0o600)
        with open(state_path) as handle:
            state = json.load(handle)
        self.assertEqual(state["pools"]["flocker"]["vdev"], node.pool_file)
        self.assertEqual(state["ssh_keys"][node.identity]["public"],
                         " ".join(public.split()[:2]))
        self.assertIn(HOST_KEY.fingerprint(), out)
        self.assertIn("ssh-keygen -lf", out)

    def test_second_run_changes_nothing(self):
        """
        A second init with the same options reuses everything: no file is
        written, no pool or key is made, and ``--json`` says all was reused.
        """
        node = self.node
        self.assertEqual(self.full()[0], 0)
        before = node.files()
        commands = len(node.fake.commands)
        status, out, err = self.full("--json")
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(node.files(), before)
        self.assertFalse([argv for argv in node.fake.commands[commands:]
                          if argv[:2] == ("zpool", "create")])
        generated = [argv for argv in node.tools.commands
                     if argv[0] == "ssh-keygen" and "-t" in argv]
        self.assertEqual(len(generated), 1)
        report = json.loads(out)
        self.assertEqual(report["created"], [])
        self.assertEqual(sorted(report["reused"]), sorted([
            "pool", "node_identity", "ssh_key", "known_hosts:[10.0.0.12]:2222",
            "authorized_keys:" + PEER_KEY.fingerprint()]))
        self.assertEqual((report["pool"]["status"], report["ssh_key"]["status"],
                          report["known_hosts"]["peers"][0]["status"],
                          report["authorized_keys"]["lines"][0]["status"]),
                         ("reused", "reused", "present", "present"))

    def test_json_first_run(self):
        """
        ``--json`` lists what a first run created, with the key's fingerprint.
        """
        status, out, _ = self.full("--json")
        report = json.loads(out)
        self.assertEqual(status, 0)
        self.assertEqual(sorted(report["created"]), sorted([
            "pool_file", "pool", "node_identity", "ssh_key", "known_hosts:[10.0.0.12]:2222",
            "authorized_keys:" + PEER_KEY.fingerprint()]))
        self.assertEqual(report["pool"]["status"], "created")
        with open(self.node.identity + ".pub") as handle:
            public = handle.read().split()
        self.assertEqual(report["ssh_key"]["fingerprint"],
                         PublicKey(key_type=public[0], data=public[1]).fingerprint())

    def test_pool_size_too_small(self):
        """
        A pool file smaller than ZFS accepts is refused with one line before
        anything is made.
        """
        before = self.node.files()
        status, out, err = run_command(
            self, [a if a != "128M" else "32M" for a in self.node.init_argv()],
            self.node.zfs, self.node.tools)
        self.assertEqual((status, out), (1, ""))
        self.assertIn("--pool-size: invalid size '32M': below the minimum of 64M", err)
        self.assertEqual(err.count("\n"), 1)
        self.assertEqual(self.node.files(), before)

    def test_existing_pool_refused(self):
        """
        A pool of that name that init did not create is refused, naming the
        pool and the fixes, and nothing at all is created.
        """
        node = self.node
        node.fake.add_pool("flocker")
        err = self.refused("--peer", "10.0.0.12:2222", "--peer-key", PEER_KEY.line(),
                           "--install-authorized-keys", node.authorized_keys)
        self.assertIn("pool flocker already exists and init did not create it", err)
        self.assertIn("--pool NAME", err)
        self.assertIn("--adopt-existing-pool", err)
        self.assertEqual(node.tools.commands, [])

    def test_adopt_existing_pool(self):
        """
        With ``--adopt-existing-pool`` an existing pool is used as it is, and
        later runs reuse it without the flag.
        """
        node = self.node
        node.fake.add_pool("flocker")
        status, out, err = node.init("--adopt-existing-pool", "--json")
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(json.loads(out)["pool"]["status"], "adopted")
        self.assertFalse(os.path.exists(node.pool_file))
        status, out, _ = node.init("--json")
        self.assertEqual((status, json.loads(out)["pool"]["status"]), (0, "reused"))

    def test_replaced_pool_refused(self):
        """
        A pool with the recorded name but another guid (destroyed and made
        again by someone else) is not init's any more.
        """
        node = self.node
        self.assertEqual(node.init()[0], 0)
        node.fake = FakeZFS(profile="zfs-fuse", seed=99)
        node.fake.add_pool("flocker")
        node.zfs = PoolMakingZFS(node.fake)
        status, _, err = node.init()
        self.assertEqual(status, 1)
        self.assertIn("it is not the pool init created (its guid changed)", err)

    def test_existing_pool_file_refused(self):
        """
        An existing file at ``--pool-file`` is never overwritten: refused,
        with the import command as the fix, and the file is unchanged.
        """
        node = self.node
        os.makedirs(os.path.dirname(node.pool_file))
        with open(node.pool_file, "wb") as handle:
            handle.write(b"someone's data")
        err = self.refused()
        self.assertIn("pool file %s already exists" % (node.pool_file,), err)
        self.assertIn("zpool import -d %s flocker" % (os.path.dirname(node.pool_file),), err)

    def test_other_pool_name_on_another_file(self):
        """
        ``--pool NAME`` with another file makes a second pool next to the
        first, which stays as it was.
        """
        node = self.node
        self.assertEqual(node.init()[0], 0)
        other = os.path.join(node.base, "other.img")
        argv = node.init_argv("--pool-file", other)
        argv[argv.index("--pool") + 1] = "second"
        argv[argv.index("--pool-file") + 1] = other
        status, _, err = run_command(self, argv, node.zfs, node.tools)
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(node.fake.pools(), ["flocker", "second"])

    def test_existing_key_refused(self):
        """
        A key at ``--ssh-identity`` that init did not create is refused
        before anything is created, and left as it was.
        """
        node = self.node
        os.makedirs(node.etc)
        write_fake_key_pair(node.identity, fake_key("admin"))
        err = self.refused()
        self.assertIn("SSH key %s already exists and init did not create it" % (node.identity,),
                      err)
        self.assertIn("--adopt-existing-key", err)

    def test_adopt_existing_key(self):
        """
        ``--adopt-existing-key`` uses a key without passphrase as it is.
        """
        node = self.node
        os.makedirs(node.etc)
        key = fake_key("admin", comment="made by hand")
        write_fake_key_pair(node.identity, key)
        status, out, err = node.init("--adopt-existing-key", "--json")
        self.assertEqual((status, err), (0, ""))
        report = json.loads(out)
        self.assertEqual((report["ssh_key"]["status"], report["ssh_key"]["fingerprint"]),
                         ("adopted", key.fingerprint()))
        self.assertEqual(node.init("--json")[0], 0)

    def test_passphrase_key_refused(self):
        """
        A key that needs a passphrase cannot be adopted: nobody is there to
        type it.
        """
        node = self.node
        os.makedirs(node.etc)
        write_fake_key_pair(node.identity, fake_key("admin"), passphrase=True)
        status, _, err = node.init("--adopt-existing-key")
        self.assertEqual(status, 1)
        self.assertIn("SSH key %s needs a passphrase, which nobody is there to type. Fix: "
                      "Use a key without a passphrase" % (node.identity,), err)

    def test_not_a_key_refused(self):
        """
        A file that is no private key is refused as such, not as a key with
        a passphrase; a public key given as the identity is named as one.
        """
        node = self.node
        os.makedirs(node.etc)
        for content, said, fix in [
                ("hello\n", "is not an SSH private key", "Give the path of a private key"),
                (PEER_KEY.line() + "\n", "is a public key, not a private key",
                 "Give the private key (the file without .pub)")]:
            with open(node.identity, "w") as handle:
                handle.write(content)
            os.chmod(node.identity, 0o600)
            status, _, err = node.init("--adopt-existing-key")
            self.assertEqual(status, 1)
            self.assertIn("SSH key %s %s. Fix: %s" % (node.identity, said, fix), err)
            self.assertNotIn("passphrase", err)

    def test_replaced_key_refused(self):
        """
        A key put in place of the one init created is not reused.
        """
        node = self.node
        self.assertEqual(node.init()[0], 0)
        os.remove(node.identity)
        os.remove(node.identity + ".pub")
        write_fake_key_pair(node.identity, fake_key("intruder"))
        status, _, err = node.init()
        self.assertEqual(status, 1)
        self.assertIn("is not the one init recorded (it was replaced). Fix: Pass "
                      "--adopt-existing-key", err)

    def test_replaced_key_adopted(self):
        """
        The refusal of a replaced key says to pass ``--adopt-existing-key``,
        and that works: the new key is used as it is and recorded (as not
        made by init), so the next run reuses it without the flag.
        """
        node = self.node
        self.assertEqual(node.init()[0], 0)
        os.remove(node.identity)
        os.remove(node.identity + ".pub")
        key = fake_key("regenerated by the operator")
        write_fake_key_pair(node.identity, key)
        status, _, err = node.init()
        self.assertEqual(status, 1)
        self.assertIn("Fix: Pass --adopt-existing-key to use it", err)
        before = node.files()
        status, out, err = node.init("--adopt-existing-key", "--json")
        self.assertEqual((status, err), (0, ""))
        report = json.loads(out)
        self.assertEqual((report["ssh_key"]["status"], report["ssh_key"]["fingerprint"]),
                         ("adopted", key.fingerprint()))
        after = node.files()
        self.assertEqual([path for path in after if after[path][2] != before[path][2]],
                         [os.path.join(node.etc, "init-state.json")])
        with open(os.path.join(node.etc, "init-state.json")) as handle:
            self.assertEqual(json.load(handle)["ssh_keys"][node.identity], {
                "public": key.text(), "fingerprint": key.fingerprint(), "created": False})
        status, out, err = node.init("--json")
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(json.loads(out)["ssh_key"]["status"], "reused")
        self.assertEqual(node.files()[node.identity], before[node.identity])

    def test_key_readable_by_others_refused(self):
        """
        init's own key, made readable by others since, is refused with the
        chmod that fixes it.
        """
        node = self.node
        self.assertEqual(node.init()[0], 0)
        os.chmod(node.identity, 0o644)
        status, _, err = node.init()
        self.assertEqual(status, 1)
        self.assertIn("Fix: chmod 600 %s" % (node.identity,), err)

    def test_changed_host_key(self):
        """
        A peer offering another key than the one recorded is an error naming
        both fingerprints; known_hosts is unchanged and nothing is created.
        """
        node = self.node
        os.makedirs(node.etc)
        old = fake_key("the-real-b")
        with open(node.known_hosts, "w") as handle:
            handle.write("[10.0.0.12]:2222 %s\n" % (old.text(),))
        err = self.refused("--peer", "10.0.0.12:2222")
        self.assertIn("[10.0.0.12]:2222 now offers host key ssh-ed25519 %s"
                      % (HOST_KEY.fingerprint(),), err)
        self.assertIn(old.fingerprint(), err)
        self.assertIn("treat this as an attack", err)

    def test_recorded_host_key_not_duplicated(self):
        """
        A host key already in known_hosts (in any of ssh's forms) is not
        added again.
        """
        node = self.node
        os.makedirs(node.etc)
        with open(node.known_hosts, "w") as handle:
            handle.write("# pinned by hand\nnode-c,[10.0.0.12]:2222 %s" % (HOST_KEY.text(),))
        status, out, _ = node.init("--peer", "10.0.0.12:2222", "--json")
        self.assertEqual(status, 0)
        self.assertEqual(json.loads(out)["known_hosts"]["peers"][0]["status"], "present")
        with open(node.known_hosts) as handle:
            self.assertEqual(handle.read().count(HOST_KEY.data), 1)

    def test_unreachable_peer(self):
        """
        A peer that offers no host key stops init before any change, with a
        message naming host and port.
        """
        node = self.node
        status, _, err = node.init("--peer", "10.0.0.99")
        self.assertEqual(status, 1)
        self.assertIn("no SSH host key from 10.0.0.99 port 22", err)
        self.assertEqual(node.fake.pools(), [])
        self.assertFalse(os.path.exists(node.etc))

    def test_unreachable_peer_fix(self):
        """
        The fix for a peer that offers no host key is about reaching it;
        ssh-keyscan's own failure is quoted.
        """
        status, _, err = self.node.init("--peer", "10.0.0.99:2222")
        self.assertEqual(status, 1)
        self.assertIn("no SSH host key from 10.0.0.99 port 2222 (ssh-keyscan failed (exit "
                      "status 1)). Fix: Check the address and port", err)

    def test_tools_missing(self):
        """
        Without ssh-keyscan or ssh-keygen init stops with one line saying
        which is missing and how to install it, and changes nothing.
        """
        node = self.node
        for missing, argv, said in [
                ({"ssh-keyscan"}, ("--peer", "10.0.0.12:2222"),
                 "ssh-keyscan, which is not installed"),
                ({"ssh-keygen"}, (), "ssh-keygen, which is not installed"),
                ({"ssh-keygen", "ssh-keyscan"}, ("--peer", "10.0.0.12:2222"),
                 "ssh-keygen and ssh-keyscan, which are not installed")]:
            node.tools.missing = missing
            err = self.refused(*argv)
            self.assertIn("error: init needs %s. Fix: Install openssh-client" % (said,), err)

    def test_ssh_keyscan_only_for_peers(self):
        """
        Without ``--peer`` ssh-keyscan is not needed.
        """
        self.node.tools.missing = {"ssh-keyscan"}
        self.assertEqual(self.node.init()[:1], (0,))

    def test_zfs_command_missing(self):
        """
        A zpool without a zfs command (a broken install) is found before the
        pool is made.
        """
        node = self.node
        zfs = node.zfs

        class WithoutZFS(object):
            def run(self, argv, errors=(), timeout=None):
                if argv[0] == "zfs":
                    return fail(ZFSNotInstalled(argv=argv, status=127,
                                                stderr=b"zfs: command not found"))
                return zfs.run(argv, errors, timeout)
        before = node.files()
        status, out, err = run_command(self, node.init_argv(), WithoutZFS(), node.tools)
        self.assertEqual((status, out, err.count("\n")), (1, "", 1))
        self.assertIn("zfs", err)
        self.assertIn("apt-get install", err)
        self.assertEqual((node.files(), node.fake.pools()), (before, []))

    def test_adopted_key_without_ssh_keygen(self):
        """
        An existing key cannot be checked without ssh-keygen: init says
        ssh-keygen is missing, not that the key has a passphrase.
        """
        node = self.node
        os.makedirs(node.etc)
        write_fake_key_pair(node.identity, fake_key("own"))
        node.tools.missing = {"ssh-keygen"}
        status, _, err = node.init("--adopt-existing-key")
        self.assertEqual(status, 1)
        self.assertIn("ssh-keygen, which is not installed", err)
        self.assertNotIn("passphrase", err)

    def test_port_22_entry(self):
        """
        A peer on port 22 is recorded under its bare name, as ssh looks it up.
        """
        node = self.node
        node.tools.offer("node-b", 22, HOST_KEY)
        self.assertEqual(node.init("--peer", "node-b")[0], 0)
        with open(node.known_hosts) as handle:
            self.assertEqual(handle.read(), "node-b %s\n" % (HOST_KEY.text(),))

    def test_peer_given_twice(self):
        """
        A peer given twice is recorded once.
        """
        self.assertEqual(self.node.init("--peer", "10.0.0.12:2222",
                                        "--peer", "10.0.0.12:2222")[0], 0)
        with open(self.node.known_hosts) as handle:
            self.assertEqual(len(handle.read().splitlines()), 1)

    def test_private_key_lost(self):
        """
        init's key whose private half is gone is not silently replaced: the
        peers authorized the old one.
        """
        node = self.node
        self.assertEqual(node.init()[0], 0)
        os.remove(node.identity)
        status, _, err = node.init()
        self.assertEqual(status, 1)
        self.assertIn("SSH key %s is missing but its public half %s.pub remains"
                      % (node.identity, node.identity), err)

    def test_unwritable_path(self):
        """
        A path that cannot be read or written is one line naming it, not a
        traceback.
        """
        node = self.node
        blocker = os.path.join(node.base, "file")
        with open(blocker, "w"):
            pass
        status, _, err = node.init("--peer-key", PEER_KEY.line(), "--install-authorized-keys",
                                   os.path.join(blocker, "authorized_keys"))
        self.assertEqual(status, 1)
        self.assertIn("flocker-zfs: error: cannot read authorized_keys %s/authorized_keys: not a "
                      "directory. Fix: Give the authorized_keys file with "
                      "--install-authorized-keys." % (blocker,), err)
        self.assertFalse(os.path.exists(node.etc))

    def test_not_regular_files(self):
        """
        A device (``/dev/zero`` never ends), a named pipe or a directory
        given as known_hosts, authorized_keys or a peer's public key, or
        found as init's state file, is one line saying what it is; it is not
        read and nothing is changed.
        """
        node = self.node
        for path, kind in not_regular_files(self):
            for what, extra in [
                    ("known_hosts", ("--peer", "10.0.0.12:2222", "--ssh-known-hosts", path)),
                    ("authorized_keys", ("--peer-key", PEER_KEY.line(),
                                         "--install-authorized-keys", path)),
                    ("public key file", ("--peer-key", path))]:
                self.assertIn("error: %s %s is not a regular file but %s. Fix: "
                              % (what, path, kind), self.refused(*extra))
        os.makedirs(node.etc)
        os.mkfifo(os.path.join(node.etc, "init-state.json"))
        status, _, err = node.init()
        self.assertEqual(status, 1)
        self.assertTrue(err.startswith("flocker-zfs: error: init's state file "
                                       "%s/init-state.json is not a regular file but a "
                                       "named pipe" % (node.etc,)), err)
        self.assertEqual(err.count("Fix:"), 1)

    def test_unwritable_pool_file(self):
        """
        A pool file that cannot be made is one line naming the path.
        """
        node = self.node
        blocker = os.path.join(node.base, "file")
        with open(blocker, "w"):
            pass
        argv = node.init_argv()
        argv[argv.index("--pool-file") + 1] = os.path.join(blocker, "pool.img")
        status, _, err = run_command(self, argv, node.zfs, node.tools)
        self.assertEqual(status, 1)
        self.assertIn("flocker-zfs: error: cannot write %s: File exists" % (blocker,), err)
        self.assertEqual(node.fake.pools(), [])

    def test_install_needs_peer_keys(self):
        """
        ``--install-authorized-keys`` without ``--peer-key`` is refused
        (this node's own key would only let it reach itself).
        """
        status, _, err = self.node.init("--install-authorized-keys", self.node.authorized_keys)
        self.assertEqual(status, 1)
        self.assertIn("--install-authorized-keys needs the peers' public keys (--peer-key)", err)
        self.assertFalse(os.path.exists(self.node.etc))

    def test_authorized_keys_appended_once(self):
        """
        Lines are appended to an existing authorized_keys (kept as it was,
        a missing final newline mended) and only once.
        """
        node = self.node
        os.makedirs(os.path.dirname(node.authorized_keys))
        with open(node.authorized_keys, "w") as handle:
            handle.write("ssh-ed25519 %s admin" % (fake_key("admin").data,))
        os.chmod(node.authorized_keys, 0o644)
        for _ in range(2):
            status, _, err = node.init("--peer-key", PEER_KEY.line(),
                                       "--install-authorized-keys", node.authorized_keys)
            self.assertEqual((status, err), (0, ""))
        with open(node.authorized_keys) as handle:
            lines = handle.read().splitlines()
        self.assertEqual(len(lines), 2)
        self.assertTrue(lines[0].endswith(" admin"))
        self.assertTrue(lines[1].startswith('restrict,command="'))
        self.assertEqual(mode(node.authorized_keys), 0o644)

    def test_conflicting_authorized_line(self):
        """
        The peer key already authorized with other options is refused,
        naming the file and line; the file is unchanged.
        """
        node = self.node
        os.makedirs(os.path.dirname(node.authorized_keys))
        with open(node.authorized_keys, "w") as handle:
            handle.write("# keys\n%s\n" % (PEER_KEY.line(),))
        before = node.files()
        status, _, err = node.init("--peer-key", PEER_KEY.line(),
                                   "--install-authorized-keys", node.authorized_keys)
        self.assertEqual(status, 1)
        self.assertIn("%s line 2 already authorizes key %s with other options"
                      % (node.authorized_keys, PEER_KEY.fingerprint()), err)
        self.assertEqual(node.files(), before)

    def test_peer_key_from_file(self):
        """
        ``--peer-key`` takes a ``.pub`` file's absolute path too.
        """
        node = self.node
        path = os.path.join(node.base, "a.pub")
        with open(path, "w") as handle:
            handle.write(PEER_KEY.line() + "\n")
        status, out, _ = node.init("--peer-key", path)
        self.assertEqual(status, 0)
        self.assertIn("Add these lines to /root/.ssh/authorized_keys", out)
        self.assertIn(PEER_KEY.data, out)

    def test_text_output(self):
        """
        The text report says what was created, prints this node's public key
        and the line a peer set up like this node would hold.
        """
        status, out, _ = self.node.init()
        with open(self.node.identity + ".pub") as handle:
            public = handle.read().strip()
        self.assertEqual(status, 0)
        self.assertIn("pool flocker: created on %s (128.0M sparse file)" % (self.node.pool_file,),
                      out)
        self.assertIn("SSH key %s: created (SHA256:" % (self.node.identity,), out)
        self.assertIn("flocker-zfs init --peer-key '%s' --install-authorized-keys" % (public,),
                      out)
        self.assertIn('restrict,command="%s peer-serve --pool flocker' % (self.node.program,),
                      out)

    def test_zfs_not_running(self):
        """
        Without the zfs-fuse daemon init stops first, naming the fix, and
        creates nothing.
        """
        self.node.fake.daemon_running = False
        status, _, err = self.node.init()
        self.assertEqual(status, 1)
        self.assertIn("zfs-fuse", err)
        self.assertIn("Fix: Start the daemon", err)
        self.assertEqual(self.node.tools.commands, [])
        self.assertFalse(os.path.exists(self.node.etc))

    def test_zfs_not_installed(self):
        """
        Without zfs the error says how to install it.
        """
        self.node.fake.installed = False
        status, _, err = self.node.init()
        self.assertEqual(status, 1)
        self.assertIn("apt-get install", err)

    def test_device_must_be_block_device(self):
        """
        ``--device`` refuses anything but a block device.
        """
        argv = self.node.init_argv()
        index = argv.index("--pool-file")
        argv[index:index + 2] = ["--device", "/dev/null"]
        status, _, err = run_command(self, argv, self.node.zfs, self.node.tools)
        self.assertEqual(status, 1)
        self.assertIn("/dev/null is not a block device", err)

    def test_zpool_create_fails(self):
        """
        When zpool refuses, the file init made for it is removed again and
        nothing is recorded, so the next run starts afresh.
        """
        node = self.node
        node.zfs = _FailingCreate(node.fake)
        status, _, err = node.init()
        self.assertEqual(status, 1)
        self.assertIn("zpool could not create pool flocker on %s: cannot create 'flocker': "
                      "invalid vdev" % (node.pool_file,), err)
        self.assertFalse(os.path.exists(node.pool_file))
        self.assertFalse(os.path.exists(os.path.join(node.etc, "init-state.json")))

    def test_program_must_be_executable(self):
        """
        The forced command's program must be an executable file here.
        """
        os.chmod(self.node.program, 0o644)
        status, _, err = self.node.init()
        self.assertEqual(status, 1)
        self.assertIn("is not an executable file", err)

    @capture_logging(None)
    def test_logged(self, logger):
        """
        A run is one eliot action with what it created.
        """
        self.assertEqual(self.node.init()[0], 0)
        assertHasAction(self, logger, CLI_INIT, True, startFields={"pool": "flocker"})


@implementer(IRunner)
class _FailingCreate(PoolMakingZFS):
    def run(self, argv, errors=(), timeout=None):
        if list(argv[:2]) == ["zpool", "create"]:
            return fail(error_for(argv, 1, b"cannot create 'flocker': invalid vdev "
                                           b"specification\n"))
        return PoolMakingZFS.run(self, argv, errors, timeout)


class ResolveProgramTests(SynchronousTestCase):
    """
    Tests for :func:`flocker_zfs._init.resolve_program`.
    """

    def setUp(self):
        self.program = os.path.abspath(self.mktemp())
        with open(self.program, "w") as handle:
            handle.write("#!/bin/sh\n")
        os.chmod(self.program, 0o755)

    def test_console_script(self):
        """
        Run as the ``flocker-zfs`` console script, its own path is used.
        """
        script = os.path.join(os.path.dirname(self.program), "flocker-zfs")
        os.rename(self.program, script)
        self.assertEqual(_init.resolve_program(None, argv0=script, which=lambda _: None),
                         script)

    def test_module(self):
        """
        Run as ``python -m flocker_zfs``, the installed script on PATH is used.
        """
        self.assertEqual(_init.resolve_program(
            None, argv0="/src/flocker_zfs/__main__.py", which=lambda _: self.program),
            self.program)

    def test_not_found(self):
        """
        With neither, the error asks for ``--program``.
        """
        error = self.assertRaises(ConfigError, _init.resolve_program, None,
                                  argv0="/x/__main__.py", which=lambda _: None)
        self.assertIn("--program", str(error))


class StepsTests(SynchronousTestCase):
    """
    Tests for the pure helpers in :mod:`flocker_zfs._initsteps`.
    """

    def test_authorized_line_round_trip(self):
        """
        Whatever the paths hold (spaces, quotes, ``$``, backslashes), sshd's
        unquoting then the shell's splitting give back the exact argv.
        """
        argv = ["/opt/my flocker/bin/flocker-zfs", "peer-serve", "--pool", "p",
                "--mount-root", '/mnt/a "quoted" $HOME \\ dir', "--node-file", "/etc/it's"]
        line = authorized_keys_line(argv, PEER_KEY, ["10.0.0.1"])
        options, key = split_authorized_line(line)
        self.assertEqual(key.text(), PEER_KEY.text())
        self.assertEqual(shlex.split(dict(options)["command"]), argv)
        self.assertNotIn("\n", line)

    def test_authorized_line_control_characters(self):
        """
        A newline could end the line early: refused.
        """
        self.assertRaises(InvalidName, authorized_keys_line, ["/bin/x\ny"], PEER_KEY)

    def test_key_refusal(self):
        """
        What OpenSSH 9's ``ssh-keygen -y -P ''`` says about a file, with the
        file's first bytes, tells a key with a passphrase from a file that
        is no key (which it reports as "error in libcrypto").
        """
        argv = ["ssh-keygen", "-y", "-P", "", "-f", "/k"]
        wrong = ToolFailed(argv, 'failed (exit status 255): Load key "/k": incorrect '
                                 'passphrase supplied to decrypt private key')
        libcrypto = ToolFailed(argv, 'failed (exit status 255): Load key "/k": error in '
                                     'libcrypto')
        openssh = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAACmFlczI1\n"
        pem = (b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
               b"DEK-Info: AES-128-CBC,FF99\n\nMIIE\n")
        for head, error, cause in [
                (openssh, wrong, "/k needs a passphrase"),
                (pem, libcrypto, "/k needs a passphrase"),
                (b"hello\n", libcrypto, "/k is not an SSH private key"),
                (b"", libcrypto, "/k is not an SSH private key"),
                (b"\xff\xfe\x00", libcrypto, "/k is not an SSH private key"),
                (PEER_KEY.line().encode() + b"\n", libcrypto,
                 "/k is a public key, not a private key"),
                (openssh, libcrypto, "ssh-keygen cannot read the private key /k: ssh-keygen "
                                     "failed (exit status 255): Load key \"/k\": error in "
                                     "libcrypto")]:
            found, fix = key_refusal("/k", head, error)
            self.assertTrue(found.startswith(cause), (head, found))
            self.assertTrue(fix)

    def test_peer_from(self):
        """
        ``--peer-from`` takes addresses, ranges and names, nothing else.
        """
        self.assertEqual(validate_peer_from("10.0.0.0/24, node-b,::1"),
                         ["10.0.0.0/24", "node-b", "::1"])
        self.assertRaises(InvalidName, validate_peer_from, '10.0.0.1",command="sh')

    def test_parse_pool_size(self):
        """
        ``--pool-size`` takes bytes or binary units; below 64M, or no size,
        is refused naming the option, with a fix giving the minimum.
        """
        self.assertEqual([parse_pool_size(t) for t in ("10G", "128m", "1.5G", "67108864")],
                         [10 << 30, 128 << 20, 3 << 29, 64 << 20])
        for text, part in [("10M", "--pool-size: invalid size '10M': below the minimum of 64M"),
                           ("ten", "--pool-size: invalid size 'ten': neither"),
                           ("0", "--pool-size: invalid size '0': not positive")]:
            with self.assertRaises(ConfigError) as caught:
                parse_pool_size(text)
            self.assertIn(part, caught.exception.summary())
            self.assertIn("at least 64M", caught.exception.fix)

    def test_run_tool_failures(self):
        """
        A tool that is missing says how to install it; one that fails
        quotes its last line of stderr and names the command to see it all.
        """
        tools = FakeSSHTools()
        tools.missing = {"ssh-keyscan"}
        failure = self.failureResultOf(Deferred.fromCoroutine(
            run_tool(tools, ["ssh-keyscan", "-p", "22", "--", "h"])), ToolMissing)
        self.assertEqual(str(failure.value), "ssh-keyscan is not installed. Fix: Install "
                         "openssh-client (`apt-get install openssh-client`).")
        failure = self.failureResultOf(Deferred.fromCoroutine(
            run_tool(tools, ["ssh-keygen", "-y", "-f", "/no/such key"])), ToolFailed)
        self.assertNotIsInstance(failure.value, ToolMissing)
        self.assertEqual(str(failure.value),
                         "ssh-keygen failed (exit status 255): Load key \"/no/such key\": invalid "
                         "format. Fix: See the message; `ssh-keygen -y -f '/no/such key'` shows "
                         "the whole output.")

    def test_hashed_and_negated_patterns(self):
        """
        Hashed entries match their host; a negated pattern excludes it.
        """
        salt = b"0123456789abcdefghij"
        digest = hmac.new(salt, b"[10.0.0.12]:2222", hashlib.sha1).digest()
        hashed = "|1|%s|%s" % (base64.b64encode(salt).decode(), base64.b64encode(digest).decode())
        self.assertTrue(host_matches(hashed, "[10.0.0.12]:2222"))
        self.assertFalse(host_matches(hashed, "10.0.0.12"))
        self.assertTrue(host_matches("10.0.0.*", "10.0.0.12"))
        self.assertFalse(host_matches("10.0.0.*,!10.0.0.12", "10.0.0.12"))

    def test_keyscan_best_first(self):
        """
        ssh-keyscan's output is read best key type first, comments skipped.
        """
        rsa = fake_key("r", "ssh-rsa")
        out = ("# 10.0.0.12:22 SSH-2.0-OpenSSH_9.2\n10.0.0.12 %s\n10.0.0.12 %s\n"
               % (rsa.text(), HOST_KEY.text())).encode()
        self.assertEqual([key.key_type for key in parse_keyscan(out)],
                         ["ssh-ed25519", "ssh-rsa"])

    def test_new_type_for_recorded_host_not_added(self):
        """
        A recorded host that offers its recorded key and a new type is
        present, and only the recorded key counts.
        """
        entries, _ = parse_known_hosts("b %s\n" % (fake_key("r", "ssh-rsa").text(),))
        decision = decide_host_key("b", "kh", entries, [HOST_KEY, fake_key("r", "ssh-rsa")])
        self.assertEqual((decision.record, decision.key.key_type), (False, "ssh-rsa"))

    def test_recorded_host_offering_only_a_new_type(self):
        """
        A recorded host that offers none of its recorded keys is a mismatch.
        """
        entries, _ = parse_known_hosts("b %s\n" % (fake_key("r", "ssh-rsa").text(),))
        self.assertRaises(HostKeyChanged, decide_host_key, "b", "kh", entries, [HOST_KEY])

    def test_revoked(self):
        """
        A key marked ``@revoked`` is never recorded.
        """
        entries, _ = parse_known_hosts("@revoked * %s\n" % (HOST_KEY.text(),))
        self.assertRaises(InitRefused, decide_host_key, "b", "kh", entries, [HOST_KEY])

    def test_unreadable_known_hosts_lines(self):
        """
        Lines that are not host keys are reported by number.
        """
        entries, bad = parse_known_hosts("garbage\n\n# c\nb %s\n" % (HOST_KEY.text(),))
        self.assertEqual((len(entries), bad), (1, [1]))
