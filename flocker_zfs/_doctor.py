# test-case-name: flocker_zfs.test.test_doctor
"""
``flocker-zfs doctor``: check that this node is ready and say what to fix.

Each check is independent (one failing never stops the others) and ends as
a :class:`~flocker_zfs._checks.Check`: ZFS installed and answering (with its
implementation and capabilities), the pool present and ONLINE, the mount
root, the node identity, the SSH key, known_hosts, the authorized_keys
lines that run ``peer-serve``, and every peer (``--peer``, and the nodes of
the deployment file) reachable over SSH with a compatible protocol version.
Nothing is changed.  The exit status is 0 only when every check passes.
"""

import json
import os

from eliot import start_action
from twisted.internet.defer import CancelledError, Deferred, DeferredList, TimeoutError

from . import _commands as commands
from ._actions import CLI_DOCTOR
from ._checks import (
    from_error, describe_capabilities, failed, is_serve_line, judge_health, judge_hello,
    judge_private_key_mode, judge_serve_line, judge_shared_file, passed)
from ._files import MAX_KEYS_FILE_BYTES, check_regular, read_bounded
from ._initsteps import (
    DEFAULT_AUTHORIZED_KEYS, ToolFailed, ToolMissing, host_token, key_refusal,
    parse_known_hosts, parse_public_key, read_key_head, recorded_keys, run_tool, setting,
    split_authorized_line)
from ._protocol import HELLO
from ._runner import ProcessRunner
from ._ssh import SSHConfig, parse_peer, validate_port
from .errors import ConfigError, FlockerZFSError, PoolNotFound, ZFSError
from .names import validate_mount_root, validate_pool_name
from .node import DEFAULT_NODE_FILE, load_node_uuid

#: Seconds a peer has to answer ``hello``.
HELLO_TIMEOUT = 30.0

#: peer-serve's defaults, for lines that leave an option out.
_SERVE_DEFAULTS = {"--pool": "flocker", "--mount-root": "/flocker",
                   "--node-file": DEFAULT_NODE_FILE}


def register(commands_parser, common, ssh):
    """
    Add ``doctor`` to the ``flocker-zfs`` subcommands.

    :param common: the parent parser of the options every command shares.
    :param ssh: the parent parser of ``--ssh-identity``, ``--ssh-known-hosts``
        and ``--ssh-port``.
    """
    parser = commands_parser.add_parser(
        "doctor", parents=[common, ssh],
        help="check that this node is ready and say what to fix",
        description="Check ZFS, the pool, the mount root, the node identity, the SSH key, "
                    "known_hosts, authorized_keys and each peer; print what to fix. Exit "
                    "status 0 only if every check passes. Changes nothing.")
    parser.add_argument("--peer", action="append", default=[], metavar="HOST[:PORT]",
                        help="check that this peer answers over SSH (repeatable)")
    parser.add_argument("--deployment", metavar="PATH", default=None,
                        help="check every other node of this deployment file too (default: "
                             "the one --config names, if any)")
    parser.add_argument("--authorized-keys", default=DEFAULT_AUTHORIZED_KEYS, metavar="FILE",
                        help="where peers' keys are authorized for peer-serve (default: "
                             "%(default)s)")
    parser.set_defaults(standalone=run_doctor)


async def run_doctor(options, out, err):
    """
    The ``doctor`` command.

    :return: 0 if every check passed, else 1.
    """
    doctor = _Doctor(options)
    with start_action(action_type=CLI_DOCTOR, pool=doctor.pool) as action:
        checks = await doctor.run()
        action.add_success_fields(failed=[check.name for check in checks if not check.ok])
    ok = all(check.ok for check in checks)
    if options.json:
        out.write(json.dumps({"ok": ok, "node_uuid": doctor.node_uuid,
                              "checks": [check.to_json() for check in checks]},
                             indent=2, sort_keys=True) + "\n")
    else:
        out.write(format_checks(checks))
    return 0 if ok else 1


def format_checks(checks):
    """
    :return: the checks as lines for a person, with a fix under each failure
        and a summary line.
    """
    lines = []
    for check in checks:
        lines.append("%-4s  %s: %s" % ("ok" if check.ok else "FAIL", check.name, check.detail))
        if not check.ok and check.fix:
            lines.append("      fix: %s" % (check.fix,))
    bad = len([check for check in checks if not check.ok])
    lines.append("all %d checks passed" % (len(checks),) if not bad
                 else "%d of %d checks failed" % (bad, len(checks)))
    return "\n".join(lines) + "\n"


def _mode(info):
    return info.st_mode & 0o777


class _Doctor(object):
    """
    One run of ``doctor``.
    """

    def __init__(self, options):
        self.options = options
        self.reactor = options.reactor
        self.zfs = options.runner or ProcessRunner(options.reactor)
        self.tools = getattr(options, "tools", None) or ProcessRunner(options.reactor)
        self.pool = validate_pool_name(setting(options, "pool"))
        self.mount_root = validate_mount_root(setting(options, "mount_root"))
        self.node_file = setting(options, "node_file")
        self.identity = setting(options, "ssh_identity")
        self.known_hosts = setting(options, "ssh_known_hosts")
        self.port = validate_port(setting(options, "ssh_port"))
        self.peers = [parse_peer(text, self.port) for text in options.peer]
        self.node_uuid = None
        self.known = None

    async def run(self):
        checks = []
        for name, step in (("zfs", self._zfs), ("pool", self._pool),
                           ("mount root", self._mount_root), ("node identity", self._identity),
                           ("ssh identity", self._ssh_identity),
                           ("known_hosts", self._known_hosts),
                           ("authorized_keys", self._authorized_keys)):
            checks.extend(await self._guarded(name, step))
        peers = [(host, port, None) for host, port in self.peers]
        checks.extend(await self._guarded("deployment", self._deployment, peers))
        results = await DeferredList([self._guarded_deferred(self._peer, *peer)
                                      for peer in peers], consumeErrors=True)
        checks.extend(check for _, found in results for check in found)
        return checks

    async def _guarded(self, name, step, *args):
        """Run one check; an unexpected exception fails that check only."""
        try:
            result = step(*args)
            if hasattr(result, "__await__"):
                result = await result
        except FlockerZFSError as error:
            return [from_error(name, error)]
        except OSError as error:
            return [failed(name, "cannot read %s: %s" % (error.filename, error.strerror),
                           "Run doctor as root (as the agent runs), or fix the permissions.")]
        except Exception as error:
            return [failed(name, "could not be checked: %r" % (error,),
                           "This is a bug in flocker-zfs doctor; please report it.")]
        return result if isinstance(result, list) else [result]

    def _guarded_deferred(self, step, *args):
        return Deferred.fromCoroutine(self._guarded("peer", step, *args))

    # -- ZFS ---------------------------------------------------------------------

    async def _zfs(self):
        try:
            capabilities = commands.capabilities_from_version(
                await self.zfs.run(commands.version()))
        except ZFSError as error:
            if not commands.is_unrecognized_command(error.stderr):
                return from_error("zfs", error)
            capabilities = commands.legacy_capabilities()
        try:
            await self.zfs.run(["zpool", "list", "-H", "-o", "name"])
        except ZFSError as error:
            return from_error("zfs", error)
        return passed("zfs", describe_capabilities(capabilities))

    async def _pool(self):
        argv = commands.pool_health(self.pool)
        try:
            health = commands.parse_pool_health(argv, await self.zfs.run(argv), self.pool)
        except PoolNotFound:
            return failed("pool", "pool %s does not exist (or is not imported)" % (self.pool,),
                          "Create it with `flocker-zfs init --pool %s` (on a new file, or "
                          "--device DEV), or import it with `zpool import %s`."
                          % (self.pool, self.pool))
        except ZFSError as error:
            return from_error("pool", error)
        return judge_health(self.pool, health)

    # -- files ---------------------------------------------------------------------

    def _mount_root(self):
        path = self.mount_root
        fix = "Choose another --mount-root, or make %s a directory root can write." % (path,)
        if os.path.isdir(path):
            if not os.access(path, os.W_OK | os.X_OK):
                return failed("mount root", "%s is not writable" % (path,), fix)
            return passed("mount root", "%s is a directory" % (path,))
        if os.path.lexists(path):
            return failed("mount root", "%s exists but is not a directory" % (path,), fix)
        parent = os.path.dirname(path)
        while not os.path.lexists(parent):
            parent = os.path.dirname(parent)
        if os.path.isdir(parent) and os.access(parent, os.W_OK | os.X_OK):
            return passed("mount root", "%s does not exist yet; it is created on first use"
                          % (path,))
        return failed("mount root", "%s does not exist and cannot be created under %s"
                      % (path, parent), fix)

    def _identity(self):
        path = self.node_file
        if not os.path.exists(path):
            return failed("node identity", "%s does not exist" % (path,),
                          "`flocker-zfs init --node-file %s` creates it. If this node owned "
                          "datasets, restore the file from backup instead: a new identity "
                          "would orphan them." % (path,))
        try:
            # Refuses /dev/zero, a pipe or a huge file unread.
            self.node_uuid = load_node_uuid(path, create=False)
        except ConfigError as error:
            return from_error("node identity", error)
        bad = judge_shared_file("node identity", path, _mode(os.stat(path)))
        return bad or passed("node identity", "node %s (%s)" % (self.node_uuid, path))

    async def _ssh_identity(self):
        path = self.identity
        if not os.path.lexists(path):
            return failed("ssh identity", "%s does not exist" % (path,),
                          "`flocker-zfs init --ssh-identity %s` creates it." % (path,))
        info = os.stat(path)
        check_regular("ssh identity", path, info.st_mode,
                      "Give the path of this node's private key with --ssh-identity.")
        bad = judge_private_key_mode(path, _mode(info), info.st_uid, os.geteuid())
        if bad is not None:
            return bad
        try:
            stdout = await run_tool(self.tools, ["ssh-keygen", "-y", "-P", "", "-f", path])
            key = parse_public_key(stdout.decode("utf-8", "replace"))
        except ToolMissing:
            raise       # failed with its own fix: install openssh-client
        except ToolFailed as error:
            return failed("ssh identity", *key_refusal(path, read_key_head(path), error))
        return passed("ssh identity", "%s: %s %s, mode %04o"
                      % (path, key.key_type, key.fingerprint(), _mode(info)))

    def _known_hosts(self):
        path = self.known_hosts
        try:
            text = self._read(path, "known_hosts", "Give the known_hosts file with "
                                                   "--ssh-known-hosts.")
        except FileNotFoundError:
            return failed("known_hosts", "%s does not exist, so no peer's host key is trusted"
                          % (path,),
                          "`flocker-zfs init --peer HOST[:PORT]` records a peer's host key "
                          "(compare the fingerprint it prints with the peer's own).")
        entries, bad_lines = parse_known_hosts(text)
        self.known = entries
        bad = judge_shared_file("known_hosts", path, _mode(os.stat(path)))
        if bad is not None:
            return bad
        detail = "%s: %d host key(s)" % (path, len(entries))
        if bad_lines:
            detail += "; lines %s are not host keys (ssh ignores them)" % (
                ", ".join(str(n) for n in bad_lines),)
        return passed("known_hosts", detail)

    @staticmethod
    def _read(path, what, fix):
        """
        :return: the text of a small regular file (undecodable bytes replaced).
        :raises ConfigError: it is not a regular file, or is too large.
        """
        return read_bounded(path, MAX_KEYS_FILE_BYTES, what, fix).decode("utf-8", "replace")

    def _authorized_keys(self):
        path = self.options.authorized_keys
        fix = ("Authorize each peer's key for peer-serve: `flocker-zfs init --peer-key KEY "
               "--install-authorized-keys %s` (each node prints its key)." % (path,))
        try:
            lines = self._read(path, "authorized_keys", "Give the authorized_keys file "
                                                        "with --authorized-keys.").splitlines()
        except FileNotFoundError:
            return failed("authorized_keys", "%s does not exist: no peer can reach this "
                          "node's peer-serve" % (path,), fix)
        bad = judge_shared_file("authorized_keys", path, _mode(os.stat(path)))
        if bad is not None:
            return bad
        expected = {"--pool": (self.pool, _SERVE_DEFAULTS["--pool"]),
                    "--mount-root": (self.mount_root, _SERVE_DEFAULTS["--mount-root"]),
                    "--node-file": (self.node_file, _SERVE_DEFAULTS["--node-file"])}
        found, problems = 0, []
        for number, text in enumerate(lines, 1):
            parsed = split_authorized_line(text)
            if parsed is None or not is_serve_line(parsed[0]):
                continue
            found += 1
            problems += judge_serve_line(number, parsed[0], expected)
        if not found:
            return failed("authorized_keys", "no line of %s runs flocker-zfs peer-serve"
                          % (path,), fix)
        if problems:
            return failed("authorized_keys", "%s: %s" % (path, "; ".join(problems)),
                          "Replace those lines with what `flocker-zfs init --peer-key KEY "
                          "--install-authorized-keys %s` writes (remove the old ones first)."
                          % (path,))
        return passed("authorized_keys", "%s: %d peer key(s) run peer-serve for pool %s"
                      % (path, found, self.pool))

    # -- peers -----------------------------------------------------------------------

    def _deployment_path(self):
        if self.options.deployment:
            return self.options.deployment
        # The dispatcher leaves the loaded AgentConfig (or None) in --config.
        config = getattr(self.options, "config", None)
        settings = getattr(config, "settings", None)
        if isinstance(config, str):
            from ._config import load_config
            settings = load_config(config).settings
        return getattr(settings, "deployment", None)

    def _deployment(self, peers):
        """Add the deployment file's other nodes to ``peers``."""
        path = self._deployment_path()
        if path is None:
            return []
        load = getattr(self.options, "load_deployment", None)
        if load is None:
            try:
                from ._deployment import load_deployment as load
            except ImportError:
                return [failed("deployment", "this flocker-zfs cannot read deployment files",
                               "Install a flocker-zfs version with the agent.")]
        deployment = load(path)
        others = [node for uuid, node in sorted(deployment.nodes.items())
                  if uuid != self.node_uuid]
        for node in others:
            peers.append((node.address, node.ssh_port, node.uuid))
        if self.node_uuid is None:
            return [failed("deployment", "cannot tell whether %s lists this node: its "
                           "identity is unknown; %d node(s)" % (path, len(others)),
                           "Fix the node identity first (see above).")]
        if self.node_uuid not in deployment.nodes:
            return [failed(
                "deployment", "%s does not list this node %s (from %s), so its agent would do "
                "nothing; %d other node(s)" % (path, self.node_uuid, self.node_file,
                                               len(others)),
                "Add this node (uuid: %s) under nodes in %s, with the address its peers "
                "reach it at, on every node; or, if this node should have another identity, "
                "point node_file (--node-file, now %s) at that node's node.json."
                % (self.node_uuid, path, self.node_file))]
        return [passed("deployment", "%s: this node and %d other node(s)"
                       % (path, len(others)))]

    async def _peer(self, host, port, expected_uuid):
        name = "peer %s:%d" % (host, port)
        if expected_uuid is not None:
            name += " (node %s)" % (expected_uuid,)
        token = host_token(host, port)
        if self.known is None:
            return failed(name, "not checked: known_hosts is missing",
                          "Fix known_hosts first (see above).")
        if not recorded_keys(self.known, token)[0]:
            return failed(name, "no host key for %s in %s" % (token, self.known_hosts),
                          "`flocker-zfs init --peer %s:%d` records it (compare the fingerprint "
                          "it prints with the peer's own)." % (host, port))
        config = SSHConfig(identity=self.identity,
                           known_hosts=self.known_hosts, port=port)
        peer = self.options.make_peer(self.reactor, config, host, port)
        d = peer.call(HELLO)
        d.addTimeout(HELLO_TIMEOUT, self.reactor)
        try:
            response = await d
        except FlockerZFSError as error:
            return from_error(name, error)
        except (TimeoutError, CancelledError):
            return failed(name, "did not answer within %d s" % (HELLO_TIMEOUT,),
                          "Check that the peer's sshd and ZFS respond.")
        return judge_hello(name, response, self.node_uuid, expected_uuid)
