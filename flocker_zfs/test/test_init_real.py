"""
``flocker-zfs init`` and ``doctor`` on real ZFS (a zfs-fuse or OpenZFS pool
on a file) with the real ssh-keygen and ssh-keyscan, and two private sshds
on loopback whose forced command is the ``peer-serve`` line init installed.

Skipped without root, ZFS or sshd; a failure under ``CI=true``.
"""

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from .._initsteps import ToolFailed, key_refusal, read_key_head, run_tool
from .._runner import ProcessRunner
from .._sshpeer import SSHPeer
from ..errors import FlockerZFSError
from . import realssh, realzfs
from .test_init import build_parser

_REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fingerprint(path):
    """:return: the ``SHA256:...`` that ``ssh-keygen -lf`` prints for ``path``."""
    out = subprocess.run(["ssh-keygen", "-lf", path], capture_output=True, check=True)
    return out.stdout.split()[1].decode("ascii")


class _Node(object):
    """
    A node's files: a new pool name and pool file in the real tier's work
    directory, a mount root, and a private directory for identity, key,
    known_hosts and init's state.
    """

    def __init__(self, case):
        self.mount_root = realzfs.make_mount_root(case)
        self.pool = realzfs.POOL_PREFIX + realzfs._unique()
        self.pool_file = os.path.join(realzfs.WORK_DIR, self.pool + ".img")
        # Clean-ups run last-in first-out: the pool goes before its file.
        case.addCleanup(lambda: os.path.exists(self.pool_file) and os.remove(self.pool_file))
        case.addCleanup(realzfs.destroy_pool, self.pool)
        self.etc = tempfile.mkdtemp(prefix="flocker-zfs-init-")
        case.addCleanup(shutil.rmtree, self.etc, True)
        self.node_file = os.path.join(self.etc, "node.json")
        self.identity = os.path.join(self.etc, "id_rsa_flocker")
        self.known_hosts = os.path.join(self.etc, "known_hosts")
        # What sshd runs: this checkout's flocker-zfs.
        self.program = os.path.join(self.etc, "flocker-zfs")
        with open(self.program, "w") as handle:
            handle.write('#!/bin/sh\nPYTHONPATH=%s exec %s -m flocker_zfs "$@"\n'
                         % (_REPOSITORY, sys.executable))
        os.chmod(self.program, 0o755)

    def options(self):
        return ["--pool", self.pool, "--mount-root", self.mount_root,
                "--node-file", self.node_file, "--ssh-identity", self.identity,
                "--ssh-known-hosts", self.known_hosts]

    def init_argv(self, *extra):
        return (["init"] + self.options() + [
            "--config-dir", self.etc, "--pool-file", self.pool_file, "--pool-size", "128M",
            "--program", self.program, "--json"] + list(extra))

    def uuid(self):
        with open(self.node_file) as handle:
            return json.load(handle)["uuid"]


class InitRealTests(TestCase):
    """
    ``init`` then ``doctor`` on real ZFS and real SSH.
    """

    timeout = 240

    def setUp(self):
        realzfs.require_real_zfs()

    async def run_command(self, argv):
        """
        Run ``init`` or ``doctor`` with real processes on the global reactor.

        :return: ``(status, stdout, stderr)``.
        """
        out, err = io.StringIO(), io.StringIO()
        options = build_parser().parse_args(argv)
        options.reactor, options.runner, options.err = reactor, None, err
        options.make_peer = SSHPeer
        try:
            status = await options.standalone(options, out, err)
        except FlockerZFSError as error:
            err.write("flocker-zfs: error: %s\n" % (error,))
            status = 1
        return status, out.getvalue(), err.getvalue()

    async def init(self, node, *extra):
        status, out, err = await self.run_command(node.init_argv(*extra))
        self.assertEqual((status, err), (0, ""))
        return json.loads(out)

    async def test_init_idempotent_and_careful(self):
        """
        init makes a pool on a sparse file and a real ed25519 key (0600),
        reports the fingerprint ssh-keygen gives; a second run creates
        nothing; a pool it did not create is refused and left alone.
        """
        node = _Node(self)
        report = await self.init(node)
        self.assertEqual(sorted(report["created"]),
                         ["node_identity", "pool", "pool_file", "ssh_key"])
        listing = subprocess.run(["zpool", "list", "-H", "-o", "name,health", node.pool],
                                 capture_output=True, env=dict(os.environ, LC_ALL="C"))
        self.assertEqual(listing.stdout.decode().split(), [node.pool, "ONLINE"])
        info = os.stat(node.pool_file)
        self.assertEqual(info.st_size, 128 * 1024 * 1024)
        self.assertLess(info.st_blocks * 512, info.st_size)
        self.assertEqual(os.stat(node.identity).st_mode & 0o777, 0o600)
        self.assertEqual(report["ssh_key"]["fingerprint"], _fingerprint(node.identity + ".pub"))
        with open(node.identity + ".pub") as handle:
            self.assertTrue(handle.read().startswith("ssh-ed25519 "))

        again = await self.init(node)
        self.assertEqual(again["created"], [])
        self.assertEqual(again["pool"]["guid"], report["pool"]["guid"])

        foreign = realzfs.make_pool(self)
        argv = node.init_argv()
        argv[argv.index("--pool") + 1] = foreign
        argv[argv.index("--pool-file") + 1] = os.path.join(node.etc, "unused.img")
        status, _, err = await self.run_command(argv)
        self.assertEqual(status, 1)
        self.assertIn("pool %s already exists and init did not create it" % (foreign,), err)
        self.assertFalse(os.path.exists(os.path.join(node.etc, "unused.img")))

    async def test_two_nodes(self):
        """
        Two nodes prepared by init (each run twice: once alone, once with
        the other's key and address) reach each other through the forced
        command init installed, and doctor passes on both; a peer whose host
        key changes is refused by init and fails doctor's peer check.
        """
        sshd = {"a": realssh.make_sshd(self), "b": realssh.make_sshd(self)}
        nodes = {"a": _Node(self), "b": _Node(self)}
        for name in ("a", "b"):
            await self.init(nodes[name])
        reports = {}
        for name, other in (("a", "b"), ("b", "a")):
            reports[name] = await self.init(
                nodes[name], "--peer", "127.0.0.1:%d" % (sshd[other].port,),
                "--peer-key", nodes[other].identity + ".pub", "--peer-from", "127.0.0.1",
                "--install-authorized-keys", sshd[name].authorized_keys)
            self.assertEqual(sorted(reports[name]["created"]), sorted([
                "known_hosts:[127.0.0.1]:%d" % (sshd[other].port,),
                "authorized_keys:" + _fingerprint(nodes[other].identity + ".pub")]))
            [peer] = reports[name]["known_hosts"]["peers"]
            self.assertEqual(peer["fingerprint"], _fingerprint(sshd[other].host_key + ".pub"))

        for name, other in (("a", "b"), ("b", "a")):
            status, out, err = await self.run_command(
                ["doctor"] + nodes[name].options() + [
                    "--peer", "127.0.0.1:%d" % (sshd[other].port,),
                    "--authorized-keys", sshd[name].authorized_keys])
            self.assertEqual((status, err), (0, ""), out)
            self.assertIn("node %s, pool %s" % (nodes[other].uuid(), nodes[other].pool), out)

        sshd["b"].regenerate_host_key()
        with open(nodes["a"].known_hosts) as handle:
            pinned = handle.read()
        argv = nodes["a"].init_argv("--peer", "127.0.0.1:%d" % (sshd["b"].port,))
        status, _, err = await self.run_command(argv)
        self.assertEqual(status, 1)
        self.assertIn("[127.0.0.1]:%d now offers host key ssh-ed25519 %s"
                      % (sshd["b"].port, _fingerprint(sshd["b"].host_key + ".pub")), err)
        with open(nodes["a"].known_hosts) as handle:
            self.assertEqual(handle.read(), pinned)
        status, out, _ = await self.run_command(
            ["doctor", "--json"] + nodes["a"].options() + [
                "--peer", "127.0.0.1:%d" % (sshd["b"].port,),
                "--authorized-keys", sshd["a"].authorized_keys])
        failed = [check for check in json.loads(out)["checks"] if not check["ok"]]
        self.assertEqual(status, 1)
        self.assertEqual([check["name"] for check in failed],
                         ["peer 127.0.0.1:%d" % (sshd["b"].port,)])
        self.assertIn("host key", failed[0]["detail"])


class KeyRefusalRealTests(TestCase):
    """
    The real ``ssh-keygen -y -P ''`` on a key with a passphrase, an old PEM
    key with one, a file that is no key and a public key: each is told
    apart (only ssh-keygen is needed).
    """

    def setUp(self):
        if shutil.which("ssh-keygen") is None:
            if os.environ.get("CI") == "true":
                self.fail("ssh-keygen is not installed")
            self.skipTest("ssh-keygen is not installed")
        self.directory = tempfile.mkdtemp(prefix="flocker-zfs-keys-")
        self.addCleanup(shutil.rmtree, self.directory, True)

    def path(self, name):
        return os.path.join(self.directory, name)

    async def refusal(self, path):
        try:
            await run_tool(ProcessRunner(reactor), ["ssh-keygen", "-y", "-P", "", "-f", path])
        except ToolFailed as error:
            return key_refusal(path, read_key_head(path), error)[0]
        self.fail("ssh-keygen read %s" % (path,))

    async def test_told_apart(self):
        """
        A passphrase is named only when there is one.
        """
        for name, extra in [("openssh", []), ("pem", ["-t", "rsa", "-b", "1024", "-m", "PEM"])]:
            subprocess.run(["ssh-keygen", "-q", "-N", "secret", "-f", self.path(name)] +
                           (extra or ["-t", "ed25519"]), check=True)
            self.assertEqual(await self.refusal(self.path(name)),
                             "%s needs a passphrase, which nobody is there to type"
                             % (self.path(name),))
        with open(self.path("text"), "w") as handle:
            handle.write("hello\n")
        os.chmod(self.path("text"), 0o600)
        self.assertEqual(await self.refusal(self.path("text")),
                         "%s is not an SSH private key" % (self.path("text"),))
        os.chmod(self.path("openssh.pub"), 0o600)
        self.assertEqual(await self.refusal(self.path("openssh.pub")),
                         "%s.pub is a public key, not a private key" % (self.path("openssh"),))
