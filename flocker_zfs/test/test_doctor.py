"""
Tests for ``flocker-zfs doctor`` (:mod:`flocker_zfs._doctor`) and its
judgements (:mod:`flocker_zfs._checks`), on a node prepared by ``init`` over
the fake ZFS, with peers on a :class:`~flocker_zfs.testing.FakeNetwork`.
"""

import json
import os

from eliot.testing import assertHasAction, capture_logging
from pyrsistent import PClass, field, pmap
from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from .._actions import CLI_DOCTOR
from .._checks import (
    describe_capabilities, failed, judge_hello, judge_serve_line, passed)
from .._doctor import format_checks
from .._protocol import PROTOCOL_VERSION
from ..interfaces import IPeer
from ..model import openzfs_capabilities, zfs_fuse_capabilities
from ..testing import FakeNetwork, FakeZFS
from .test_files import not_regular_files
from .test_init import (
    HOST_KEY, PEER_KEY, Node, PoolMakingZFS, fake_key, run_command, write_fake_key_pair)

PEER = "peer 10.0.0.12:2222"
ALL = ["zfs", "pool", "mount root", "node identity", "ssh identity", "known_hosts",
       "authorized_keys", PEER]


@implementer(IPeer)
class AnsweringPeer(object):
    """
    A peer that answers every ``call`` with ``response`` (or never, when
    ``response`` is ``None``).
    """

    def __init__(self, address, response):
        self.address = address
        self.response = response

    def call(self, verb, *args):
        return Deferred() if self.response is None else succeed(dict(self.response))

    def stream(self, send_argv, verb, *args, progress=None):
        raise NotImplementedError()


class NodeAddress(PClass):
    """Stand-in for Part 2's deployment node record."""
    uuid = field(type=str)
    address = field(type=str)
    ssh_port = field(type=int, initial=22)


class Deployment(PClass):
    """Stand-in for Part 2's deployment record."""
    nodes = field()


class Settings(PClass):
    """Stand-in for Part 1's ``ZFSSettings``."""
    deployment = field(type=str)


class AgentConfig(PClass):
    """Stand-in for Part 1's ``AgentConfig``, as the dispatcher leaves it in --config."""
    settings = field()


class DoctorTests(SynchronousTestCase):
    """
    Tests for ``flocker-zfs doctor``.
    """

    def setUp(self):
        self.node = Node(self)
        self.node.tools.offer("10.0.0.12", 2222, HOST_KEY)
        status, _, err = self.node.init(
            "--peer", "10.0.0.12:2222", "--peer-key", PEER_KEY.line(),
            "--install-authorized-keys", self.node.authorized_keys)
        self.assertEqual((status, err), (0, ""))
        self.network = FakeNetwork(os.path.abspath(self.mktemp()))
        self.addCleanup(self.network.unmount_all)
        self.peer_node = self.network.add_node("10.0.0.12")
        self.local = self.network.add_node("local")
        self.made = []
        self.peer = None

    def make_peer(self, reactor, config, host, port):
        self.made.append((config, host, port))
        if self.peer is not None:
            return self.peer
        return self.local.peer(host)

    def doctor(self, *extra, **attributes):
        node = self.node
        argv = (["doctor"] + node.common() + [
            "--ssh-identity", node.identity, "--ssh-known-hosts", node.known_hosts,
            "--authorized-keys", node.authorized_keys] + list(extra))
        return run_command(self, argv, node.zfs, node.tools, self.make_peer, **attributes)

    def checks(self, *extra, **attributes):
        """
        :return: ``(status, {name: check dict})`` from ``doctor --json``.
        """
        status, out, err = self.doctor("--json", *extra, **attributes)
        self.assertEqual(err, "")
        report = json.loads(out)
        self.assertEqual(report["ok"], status == 0)
        return status, {check["name"]: check for check in report["checks"]}

    def assert_only_failing(self, names, *extra, **attributes):
        """
        Exactly the checks ``names`` fail, each with a fix; the exit status is 1.

        :return: the checks by name.
        """
        status, checks = self.checks(*extra, **attributes)
        self.assertEqual(status, 1)
        self.assertEqual(sorted(name for name, c in checks.items() if not c["ok"]), sorted(names))
        for name in names:
            self.assertTrue(checks[name]["fix"])
        return checks

    def test_healthy(self):
        """
        On a node prepared by init, with a reachable peer of the same
        version, every check passes and the exit status is 0.
        """
        status, out, err = self.doctor("--peer", "10.0.0.12:2222")
        self.assertEqual((status, err), (0, ""))
        lines = out.splitlines()
        self.assertEqual([line.split(": ")[0] for line in lines if not line.startswith(" ")][:-1],
                         ["ok    " + name for name in ALL])
        self.assertEqual(lines[-1], "all 8 checks passed")
        self.assertIn("ok    zfs: zfs-fuse; has holds, receive -u; lacks zfs list -p", out)
        self.assertIn("node %s, pool flocker, zfs-fuse, protocol %d"
                      % (self.peer_node.node_uuid, PROTOCOL_VERSION), out)
        [(config, host, port)] = self.made
        self.assertEqual((config.identity, config.known_hosts, config.port, host, port),
                         (self.node.identity, self.node.known_hosts, 2222, "10.0.0.12", 2222))

    def test_json(self):
        """
        ``--json`` gives every check with name, ok, detail and fix.
        """
        status, checks = self.checks("--peer", "10.0.0.12:2222")
        self.assertEqual(status, 0)
        self.assertEqual(sorted(checks), sorted(ALL))
        self.assertEqual(set(checks["pool"]), {"name", "ok", "detail", "fix"})

    def test_zfs_not_running(self):
        """
        Without the zfs-fuse daemon the ZFS and pool checks fail, naming
        the daemon; the others still run and pass.
        """
        self.node.fake.daemon_running = False
        checks = self.assert_only_failing(["zfs", "pool"], "--peer", "10.0.0.12:2222")
        self.assertIn("Start the daemon", checks["zfs"]["fix"])

    def test_zfs_not_installed(self):
        """
        Without zfs the fix says how to install it.
        """
        self.node.fake.installed = False
        checks = self.assert_only_failing(["zfs", "pool"])
        self.assertIn("apt-get install", checks["zfs"]["fix"])

    def test_openzfs(self):
        """
        On OpenZFS the check names its version and what it can do.
        """
        self.node.fake = FakeZFS(profile="openzfs")
        self.node.fake.add_pool("flocker")
        self.node.zfs = PoolMakingZFS(self.node.fake)
        _, checks = self.checks()
        self.assertTrue(checks["zfs"]["ok"])
        self.assertIn("openzfs 2.1.11", checks["zfs"]["detail"])
        self.assertIn("resumable receive", checks["zfs"]["detail"])

    def test_pool_missing(self):
        """
        A missing pool fails only the pool check, with init as the fix.
        """
        self.node.fake = FakeZFS(profile="zfs-fuse")
        self.node.zfs = PoolMakingZFS(self.node.fake)
        checks = self.assert_only_failing(["pool"])
        self.assertEqual(checks["pool"]["detail"],
                         "pool flocker does not exist (or is not imported)")
        self.assertIn("flocker-zfs init --pool flocker", checks["pool"]["fix"])

    def test_pool_degraded(self):
        """
        A pool that is not ONLINE fails, pointing to ``zpool status``.
        """
        self.node.fake.fail_next(lambda argv: "name,health" in argv, status=0,
                                 stdout=b"flocker\tDEGRADED\n")
        checks = self.assert_only_failing(["pool"])
        self.assertEqual(checks["pool"]["detail"], "pool flocker is DEGRADED")
        self.assertIn("zpool status -v flocker", checks["pool"]["fix"])

    def test_mount_root_not_directory(self):
        """
        A mount root that is a file fails only that check.
        """
        with open(self.node.mount_root, "w"):
            pass
        checks = self.assert_only_failing(["mount root"])
        self.assertIn("is not a directory", checks["mount root"]["detail"])

    def test_mount_root_created_later(self):
        """
        A missing mount root under a writable directory passes.
        """
        _, checks = self.checks()
        self.assertIn("created on first use", checks["mount root"]["detail"])

    def test_identity_missing(self):
        """
        A missing identity fails with init as the fix, and the warning about
        restoring it.
        """
        os.remove(self.node.node_file)
        checks = self.assert_only_failing(["node identity"], "--peer", "10.0.0.12:2222")
        self.assertIn("flocker-zfs init --node-file", checks["node identity"]["fix"])
        self.assertIn("restore the file from backup", checks["node identity"]["fix"])

    def test_identity_malformed(self):
        """
        An identity file that is not the identity fails.
        """
        with open(self.node.node_file, "w") as handle:
            handle.write("{}")
        checks = self.assert_only_failing(["node identity"])
        self.assertIn("Restore it from backup", checks["node identity"]["fix"])

    def test_identity_writable_by_others(self):
        """
        An identity file others can write fails, with the chmod.
        """
        os.chmod(self.node.node_file, 0o666)
        checks = self.assert_only_failing(["node identity"])
        self.assertEqual(checks["node identity"]["fix"], "chmod go-w %s" % (self.node.node_file,))

    def test_ssh_identity_readable(self):
        """
        A key readable by others fails with ``chmod 600``.
        """
        os.chmod(self.node.identity, 0o640)
        checks = self.assert_only_failing(["ssh identity"], "--peer", "10.0.0.12:2222")
        self.assertEqual(checks["ssh identity"]["fix"], "chmod 600 %s" % (self.node.identity,))

    def test_ssh_identity_missing(self):
        """
        A missing key fails with init as the fix.
        """
        os.remove(self.node.identity)
        checks = self.assert_only_failing(["ssh identity"])
        self.assertIn("flocker-zfs init --ssh-identity", checks["ssh identity"]["fix"])

    def test_ssh_identity_passphrase(self):
        """
        A key that needs a passphrase fails.
        """
        os.remove(self.node.identity)
        os.remove(self.node.identity + ".pub")
        write_fake_key_pair(self.node.identity, fake_key("x"), passphrase=True)
        checks = self.assert_only_failing(["ssh identity"])
        self.assertEqual(checks["ssh identity"]["detail"],
                         "%s needs a passphrase, which nobody is there to type"
                         % (self.node.identity,))
        self.assertIn("Use a key without a passphrase", checks["ssh identity"]["fix"])

    def test_ssh_identity_encrypted_pem(self):
        """
        An old-style PEM key whose header says it is encrypted needs a
        passphrase too.
        """
        with open(self.node.identity, "w") as handle:
            handle.write("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
                         "DEK-Info: AES-128-CBC,FF99\n\nAAAA\n-----END RSA PRIVATE KEY-----\n")
        checks = self.assert_only_failing(["ssh identity"])
        self.assertIn("needs a passphrase", checks["ssh identity"]["detail"])

    def test_ssh_identity_not_a_key(self):
        """
        A file that is no private key fails as such, not as a key with a
        passphrase; a public key is named as one; a directory or device is
        said to be one.
        """
        for content, detail, fix in [
                ("hello\n", "is not an SSH private key", "Give the path of a private key"),
                (PEER_KEY.line() + "\n", "is a public key, not a private key",
                 "Give the private key (the file without .pub)")]:
            with open(self.node.identity, "w") as handle:
                handle.write(content)
            checks = self.assert_only_failing(["ssh identity"])
            self.assertEqual(checks["ssh identity"]["detail"],
                             "%s %s" % (self.node.identity, detail))
            self.assertIn(fix, checks["ssh identity"]["fix"])
            self.assertNotIn("passphrase", checks["ssh identity"]["detail"])
        checks = self.checks("--ssh-identity", "/dev/zero")[1]
        self.assertEqual(checks["ssh identity"]["detail"],
                         "ssh identity /dev/zero is not a regular file but a character device")

    def test_ssh_keygen_missing(self):
        """
        Without ssh-keygen the key cannot be checked: the check says so and
        how to install it, not that the key has a passphrase.
        """
        self.node.tools.missing = {"ssh-keygen"}
        checks = self.assert_only_failing(["ssh identity"])
        self.assertEqual((checks["ssh identity"]["detail"], checks["ssh identity"]["fix"]),
                         ("ssh-keygen is not installed",
                          "Install openssh-client (`apt-get install openssh-client`)."))

    def test_known_hosts_missing(self):
        """
        A missing known_hosts fails with init --peer as the fix.
        """
        os.remove(self.node.known_hosts)
        checks = self.assert_only_failing(["known_hosts"])
        self.assertIn("flocker-zfs init --peer HOST[:PORT]", checks["known_hosts"]["fix"])

    def test_peer_not_in_known_hosts(self):
        """
        A peer without a recorded host key fails without being called.
        """
        self.network.add_node("node-c")
        checks = self.assert_only_failing(["peer node-c:22"], "--peer", "node-c")
        self.assertIn("flocker-zfs init --peer node-c:22", checks["peer node-c:22"]["fix"])
        self.assertEqual(self.made, [])

    def test_authorized_keys_missing(self):
        """
        No authorized_keys file fails with init's install as the fix.
        """
        os.remove(self.node.authorized_keys)
        checks = self.assert_only_failing(["authorized_keys"])
        self.assertIn("--install-authorized-keys", checks["authorized_keys"]["fix"])

    def test_authorized_keys_without_serve_line(self):
        """
        A file with no peer-serve line fails.
        """
        with open(self.node.authorized_keys, "w") as handle:
            handle.write(PEER_KEY.line() + "\n")
        checks = self.assert_only_failing(["authorized_keys"])
        self.assertIn("runs flocker-zfs peer-serve", checks["authorized_keys"]["detail"])

    def test_authorized_keys_stale_program(self):
        """
        A line whose program is gone (a reinstall elsewhere) fails.
        """
        os.remove(self.node.program)
        checks = self.assert_only_failing(["authorized_keys"])
        self.assertIn("line 1 runs %s, which is not an executable file here"
                      % (self.node.program,), checks["authorized_keys"]["detail"])

    def test_authorized_keys_other_pool(self):
        """
        A line serving another pool than this node's fails.
        """
        argv = ["doctor", "--json", "--pool", "other", "--mount-root", self.node.mount_root,
                "--node-file", self.node.node_file, "--ssh-identity", self.node.identity,
                "--ssh-known-hosts", self.node.known_hosts,
                "--authorized-keys", self.node.authorized_keys]
        self.node.fake.add_pool("other")
        status, out, _ = run_command(self, argv, self.node.zfs, self.node.tools, self.make_peer)
        checks = {c["name"]: c for c in json.loads(out)["checks"]}
        self.assertEqual(status, 1)
        self.assertEqual([name for name, c in checks.items() if not c["ok"]], ["authorized_keys"])
        self.assertIn("line 1 serves --pool flocker, not other",
                      checks["authorized_keys"]["detail"])

    def test_peer_unreachable(self):
        """
        An unreachable peer fails its check with the transport's fix.
        """
        self.network.partition("10.0.0.12")
        checks = self.assert_only_failing([PEER], "--peer", "10.0.0.12:2222")
        self.assertIn("peer unreachable: 10.0.0.12", checks[PEER]["detail"])
        self.assertIn("firewall", checks[PEER]["fix"])

    def test_peer_other_version(self):
        """
        A peer speaking another protocol version fails.
        """
        self.peer = AnsweringPeer("10.0.0.12", {"ok": True, "protocol": PROTOCOL_VERSION + 1,
                                                "node_uuid": self.peer_node.node_uuid})
        checks = self.assert_only_failing([PEER], "--peer", "10.0.0.12:2222")
        self.assertEqual(checks[PEER]["detail"], "answers with protocol version %d; this node "
                         "speaks %d" % (PROTOCOL_VERSION + 1, PROTOCOL_VERSION))
        self.assertIn("same flocker-zfs version", checks[PEER]["fix"])

    def test_peer_is_this_node(self):
        """
        A peer answering with this node's own uuid fails.
        """
        own = self.own_uuid()
        self.peer = AnsweringPeer("10.0.0.12", {"ok": True, "protocol": PROTOCOL_VERSION,
                                                "node_uuid": own})
        checks = self.assert_only_failing([PEER], "--peer", "10.0.0.12:2222")
        self.assertIn("is this node itself", checks[PEER]["detail"])

    def test_peer_silent(self):
        """
        A peer that never answers fails after the timeout.
        """
        self.peer = AnsweringPeer("10.0.0.12", None)
        status, out, _ = self.doctor("--json", "--peer", "10.0.0.12:2222", advance=31)
        checks = {c["name"]: c for c in json.loads(out)["checks"]}
        self.assertEqual(status, 1)
        self.assertEqual(checks[PEER]["detail"], "did not answer within 30 s")

    def own_uuid(self):
        """:return: this node's uuid, as init wrote it."""
        with open(self.node.node_file) as handle:
            return json.load(handle)["uuid"]

    def write_deployment(self, text):
        """:return: the path of a new deployment file holding ``text``."""
        path = os.path.join(self.node.base, "deployment.yml")
        with open(path, "w") as handle:
            handle.write(text)
        return path

    def deployment(self, peer_uuid):
        own = self.own_uuid()
        nodes = pmap({own: NodeAddress(uuid=own, address="10.0.0.1"),
                      peer_uuid: NodeAddress(uuid=peer_uuid, address="10.0.0.12",
                                             ssh_port=2222)})
        loaded = []

        def load(path):
            loaded.append(path)
            return Deployment(nodes=nodes)
        return load, loaded

    def test_deployment_nodes(self):
        """
        Every other node of the deployment file is checked, by the uuid the
        file gives it; this node itself is not.
        """
        load, loaded = self.deployment(self.peer_node.node_uuid)
        status, checks = self.checks("--deployment", "/etc/flocker/deployment.yml",
                                     load_deployment=load)
        name = "%s (node %s)" % (PEER, self.peer_node.node_uuid)
        self.assertEqual((status, loaded), (0, ["/etc/flocker/deployment.yml"]))
        self.assertTrue(checks[name]["ok"])
        self.assertEqual(checks["deployment"]["detail"],
                         "/etc/flocker/deployment.yml: this node and 1 other node(s)")

    def test_deployment_file(self):
        """
        A real deployment file is read with Part 2's loader; a node listed
        without a recorded host key fails, the reachable one passes.
        """
        own = self.own_uuid()
        path = self.write_deployment(
            "nodes:\n"
            "  - {uuid: %s, address: 10.0.0.1}\n"
            "  - {uuid: %s, address: 10.0.0.12, ssh_port: 2222}\n"
            "  - {uuid: 00000000-0000-4000-8000-000000000001, address: node-c}\n"
            "datasets: []\n" % (own, self.peer_node.node_uuid))
        status, checks = self.checks("--deployment", path)
        self.assertEqual(status, 1)
        self.assertEqual(checks["deployment"]["detail"],
                         "%s: this node and 2 other node(s)" % (path,))
        self.assertTrue(checks["%s (node %s)" % (PEER, self.peer_node.node_uuid)]["ok"])
        self.assertEqual(
            [name for name, check in checks.items() if not check["ok"]],
            ["peer node-c:22 (node 00000000-0000-4000-8000-000000000001)"])

    def test_deployment_without_this_node(self):
        """
        A deployment file that does not list this node (the agent would do
        nothing) fails, naming the node and the node file, with the fix; its
        other nodes are still checked.
        """
        own = self.own_uuid()
        path = self.write_deployment("nodes:\n"
                                     "  - {uuid: %s, address: 10.0.0.12, ssh_port: 2222}\n"
                                     % (self.peer_node.node_uuid,))
        checks = self.assert_only_failing(["deployment"], "--deployment", path)
        self.assertEqual(checks["deployment"]["detail"],
                         "%s does not list this node %s (from %s), so its agent would do "
                         "nothing; 1 other node(s)" % (path, own, self.node.node_file))
        self.assertIn("Add this node (uuid: %s) under nodes in %s" % (own, path),
                      checks["deployment"]["fix"])
        self.assertIn(self.node.node_file, checks["deployment"]["fix"])
        self.assertTrue(checks["%s (node %s)" % (PEER, self.peer_node.node_uuid)]["ok"])

    def test_deployment_empty(self):
        """
        An empty deployment file lists no node at all: it fails too.
        """
        path = self.write_deployment("")
        checks = self.assert_only_failing(["deployment"], "--deployment", path)
        self.assertIn("%s does not list this node" % (path,), checks["deployment"]["detail"])

    def test_deployment_without_identity(self):
        """
        Without this node's identity, the deployment check cannot tell
        whether the file lists it, and says so instead of passing.
        """
        load, _ = self.deployment(self.peer_node.node_uuid)
        os.remove(self.node.node_file)
        status, checks = self.checks("--deployment", "/d.yml", load_deployment=load)
        self.assertEqual((status, checks["deployment"]["ok"]), (1, False))
        self.assertIn("cannot tell whether /d.yml lists this node",
                      checks["deployment"]["detail"])

    def test_deployment_invalid(self):
        """
        A deployment file that cannot be read fails its check with the fix.
        """
        checks = self.assert_only_failing(["deployment"], "--deployment",
                                          os.path.join(self.node.base, "missing.yml"))
        self.assertIn("missing.yml", checks["deployment"]["detail"])

    def test_deployment_from_config(self):
        """
        Without ``--deployment``, the deployment file the configuration names
        is checked.
        """
        load, loaded = self.deployment(self.peer_node.node_uuid)
        config = AgentConfig(settings=Settings(deployment="/srv/deployment.yml"))
        status, _ = self.checks(load_deployment=load, config=config)
        self.assertEqual((status, loaded), (0, ["/srv/deployment.yml"]))

    def test_deployment_wrong_uuid(self):
        """
        A node answering with another uuid than the file gives it fails.
        """
        wrong = "00000000-0000-4000-8000-000000000000"
        load, _ = self.deployment(wrong)
        name = "%s (node %s)" % (PEER, wrong)
        checks = self.assert_only_failing([name], "--deployment", "/d.yml",
                                          load_deployment=load)
        self.assertIn("but the deployment file says %s" % (wrong,), checks[name]["detail"])

    def test_not_regular_files(self):
        """
        A device (``/dev/zero`` never ends), a pipe or a directory given as
        the deployment file, authorized_keys, known_hosts or node file fails
        that check, saying what it is, and is not read.
        """
        cases = not_regular_files(self)
        for option, name in [("--deployment", "deployment"),
                             ("--authorized-keys", "authorized_keys"),
                             ("--ssh-known-hosts", "known_hosts"),
                             ("--node-file", "node identity")]:
            for path, kind in cases:
                status, checks = self.checks(option, path)
                self.assertEqual(status, 1)
                failing = [key for key, check in checks.items() if not check["ok"]]
                self.assertIn(name, failing, (option, path))
                self.assertIn("%s is not a regular file but %s" % (path, kind),
                              checks[name]["detail"])
                self.assertNotIn("bug", checks[name]["fix"])

    def test_huge_files(self):
        """
        An authorized_keys or known_hosts file of more than 4 MiB, or a node
        identity file of more than 64 KiB, fails its check instead of being
        read.
        """
        for option, name, what, limit, size in [
                ("--authorized-keys", "authorized_keys", "authorized_keys", 4 * 1024 * 1024,
                 "4M"),
                ("--ssh-known-hosts", "known_hosts", "known_hosts", 4 * 1024 * 1024, "4M"),
                ("--node-file", "node identity", "node identity file", 64 * 1024, "64K")]:
            path = os.path.join(self.node.base, "huge")
            with open(path, "wb") as handle:
                handle.truncate(limit + 1)
            _, checks = self.checks(option, path)
            self.assertEqual(checks[name]["detail"],
                             "%s %s is larger than %d bytes (%s), more than such a file "
                             "ever holds" % (what, path, limit, size))
            self.assertIn(option, checks[name]["fix"])

    def test_text_failure(self):
        """
        The text report puts the fix under each failure and counts them.
        """
        os.chmod(self.node.identity, 0o644)
        status, out, _ = self.doctor()
        self.assertEqual(status, 1)
        self.assertIn("FAIL  ssh identity: %s is readable by others (mode 0644); ssh refuses "
                      "it\n      fix: chmod 600 %s\n" % (self.node.identity, self.node.identity),
                      out)
        self.assertTrue(out.endswith("1 of 7 checks failed\n"))

    def test_changes_nothing(self):
        """
        doctor changes no file and runs only reading commands.
        """
        before = self.node.files()
        count = len(self.node.fake.commands)
        self.doctor("--peer", "10.0.0.12:2222")
        self.assertEqual(self.node.files(), before)
        self.assertEqual(sorted({argv[:2] for argv in self.node.fake.commands[count:]}),
                         [("zfs", "version"), ("zpool", "list")])

    @capture_logging(None)
    def test_logged(self, logger):
        """
        A run is one eliot action naming the failed checks.
        """
        os.remove(self.node.known_hosts)
        self.doctor()
        assertHasAction(self, logger, CLI_DOCTOR, True, startFields={"pool": "flocker"},
                        endFields={"failed": ["known_hosts"]})


class JudgementTests(SynchronousTestCase):
    """
    Tests for the pure judgements of :mod:`flocker_zfs._checks`.
    """

    def test_capabilities(self):
        """
        Capabilities are described as what the implementation has and lacks.
        """
        self.assertEqual(describe_capabilities(zfs_fuse_capabilities()),
                         "zfs-fuse; has holds, receive -u; lacks zfs list -p, resumable "
                         "receive, bookmarks, send size estimates, compressed send, raw send")
        self.assertEqual(describe_capabilities(openzfs_capabilities("2.1.11")),
                         "openzfs 2.1.11; has zfs list -p, resumable receive, bookmarks, holds, "
                         "send size estimates, compressed send, raw send, receive -u")

    def test_hello_without_protocol(self):
        """
        A peer too old to report a protocol version is incompatible.
        """
        check = judge_hello("peer b:22", {"ok": True, "node_uuid": "x"})
        self.assertEqual((check.ok, check.detail),
                         (False, "answers with protocol version (none); this node speaks %d"
                          % (PROTOCOL_VERSION,)))

    def test_serve_line_defaults(self):
        """
        Options a line leaves out count with peer-serve's defaults.
        """
        options = [("restrict", None), ("command", "/bin/true peer-serve")]
        expected = {"--pool": ("flocker", "flocker"), "--mount-root": ("/data", "/flocker")}
        self.assertEqual(judge_serve_line(3, options, expected, executable=lambda _: True),
                         ["line 3 serves --mount-root /flocker, not /data"])

    def test_serve_line_restrict(self):
        """
        A line without ``restrict`` is a problem.
        """
        options = [("command", "/bin/true peer-serve")]
        self.assertEqual(judge_serve_line(1, options, {}, executable=lambda _: True),
                         ["line 1 lacks the restrict option (forwarding and a terminal stay "
                          "allowed)"])

    def test_format(self):
        """
        Passing checks are one line; failures add their fix.
        """
        self.assertEqual(format_checks([passed("a", "fine"), failed("b", "broken", "mend it")]),
                         "ok    a: fine\nFAIL  b: broken\n      fix: mend it\n"
                         "1 of 2 checks failed\n")
