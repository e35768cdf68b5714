# test-case-name: flocker_zfs.test.test_init
"""
``flocker-zfs init``: prepare this node in one step, the way
``docs/peers.rst`` asks: a pool (on a sparse file or a device), the node
identity, the peer SSH key, the restricted ``authorized_keys`` line that
lets peers reach ``peer-serve``, and the peers' pinned host keys.

It is idempotent and careful: everything is inspected first and nothing is
changed when something would have to be touched that init did not create
(a pool, a pool file, a key, a host key that changed).  What it created is
recorded in ``<config-dir>/init-state.json`` (mode 0600), so the next run
reuses exactly those.  zpool runs through the injected runner; ssh-keygen
and ssh-keyscan through processes on the reactor.
"""

import json
import os
import shutil
import stat
import sys

from eliot import start_action

from . import _commands as commands
from ._actions import CLI_INIT
from ._initsteps import (
    DEFAULT_AUTHORIZED_KEYS, SCAN_ARGUMENT, STATE_FILE, InitRefused, NoHostKey, ToolFailed,
    ToolMissing, authorized_keys_line, decide_host_key, host_token, key_refusal,
    known_hosts_line, load_peer_key, load_state, os_reason, parse_keyscan, parse_known_hosts,
    parse_pool_size, parse_public_key, read_key_head, read_keys_file, read_public_key,
    require_tools, run_tool, save_state, serve_argv, setting, split_authorized_line,
    validate_peer_from)
from ._runner import ProcessRunner
from ._sizes import human_size
from ._ssh import parse_peer, validate_path, validate_port
from .errors import ConfigError, ZFSError, ZFSNotInstalled
from .names import validate_mount_root, validate_pool_name
from .node import load_node_uuid

DEFAULT_CONFIG_DIR = "/etc/flocker"
#: Where a pool file goes without --pool-file: ``<dir>/<pool>.img``.
DEFAULT_POOL_DIR = "/var/lib/flocker"
DEFAULT_POOL_SIZE = "10G"


def register(commands_parser, common, ssh):
    """
    Add ``init`` to the ``flocker-zfs`` subcommands.

    :param common: the parent parser of the options every command shares.
    :param ssh: the parent parser of ``--ssh-identity``, ``--ssh-known-hosts``
        and ``--ssh-port``.
    """
    parser = commands_parser.add_parser(
        "init", parents=[common, ssh],
        help="prepare this node: pool, identity, peer key, authorized_keys, known_hosts",
        description="Prepare this node in one step: create the pool (on a sparse file or a "
                    "device), the node identity and the peer SSH key; print or install the "
                    "restricted authorized_keys line peers use; record peers' host keys. "
                    "Safe to run again: it reuses what it created and refuses to touch a "
                    "pool or key it did not create.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--pool-file", metavar="PATH",
                       help="create the pool on this new sparse file (default: %s/POOL.img)"
                            % (DEFAULT_POOL_DIR,))
    where.add_argument("--device", metavar="DEV",
                       help="create the pool on this block device instead (never forced)")
    parser.add_argument("--pool-size", default=DEFAULT_POOL_SIZE, metavar="SIZE",
                        help="size of a new pool file, e.g. 512M, 10G (default: %(default)s)")
    parser.add_argument("--adopt-existing-pool", action="store_true",
                        help="use an existing pool init did not create (it is not changed)")
    parser.add_argument("--config-dir", default=DEFAULT_CONFIG_DIR, metavar="DIR",
                        help="where init records what it created, in %s (default: "
                             "%%(default)s)" % (STATE_FILE,))
    parser.add_argument("--adopt-existing-key", action="store_true",
                        help="use the key at --ssh-identity although init did not create "
                             "it (made by hand, or regenerated in place of init's)")
    parser.add_argument("--peer", action="append", default=[], metavar="HOST[:PORT]",
                        help="record this peer's host key (repeatable); check the printed "
                             "fingerprint against the peer's own")
    parser.add_argument("--peer-key", action="append", default=[], metavar="KEY",
                        help="a peer's public key (the line or a .pub file's absolute path) "
                             "to authorize for peer-serve on this node (repeatable)")
    parser.add_argument("--peer-from", metavar="ADDRS",
                        help="comma-separated addresses or CIDR ranges the peer keys are "
                             "accepted from (authorized_keys from=)")
    parser.add_argument("--install-authorized-keys", nargs="?", const=DEFAULT_AUTHORIZED_KEYS,
                        default=None, metavar="FILE",
                        help="append the lines for --peer-key keys to FILE (default FILE: "
                             "%s) instead of printing them" % (DEFAULT_AUTHORIZED_KEYS,))
    parser.add_argument("--program", metavar="PATH",
                        help="absolute path of flocker-zfs for the forced command "
                             "(default: this program)")
    parser.set_defaults(standalone=run_init)


async def run_init(options, out, err):
    """
    The ``init`` command: inspect, then create what is missing, then report.

    :return: the exit status (0).
    :raises FlockerZFSError: a refusal or failure; nothing is changed when
        the refusal comes from the inspection.
    """
    work = _Init(options)
    with start_action(action_type=CLI_INIT, pool=work.pool) as action:
        try:
            await work.inspect()
        except OSError as error:
            raise ConfigError("cannot read %s: %s" % (error.filename, os_reason(error)),
                              fix="Check the path and its permissions; nothing was changed.")
        await work.apply()
        action.add_success_fields(created=work.created, reused=work.reused)
    _print_report(work.report(), options.json, out)
    return 0


def _absolute(what, value):
    if not isinstance(value, str) or not os.path.isabs(value) or os.path.normpath(value) != value:
        raise ConfigError("invalid %s %r: must be an absolute, normalised path" % (what, value),
                          fix="Give the full path, e.g. /var/lib/flocker/flocker.img.")
    return value


def resolve_program(explicit, argv0=None, which=shutil.which):
    """
    The absolute path of the installed ``flocker-zfs`` console script, for
    the forced command (sshd runs it with a minimal PATH).

    :raises ConfigError: not found, or not an executable file.
    """
    if explicit is not None:
        candidate = _absolute("--program", explicit)
    else:
        argv0 = sys.argv[0] if argv0 is None else argv0
        if os.path.basename(argv0) == "flocker-zfs":
            candidate = os.path.abspath(argv0) if os.sep in argv0 else which(argv0)
        else:
            candidate = which("flocker-zfs")
        if candidate is None:
            raise ConfigError("cannot tell where the flocker-zfs program is installed "
                              "(running as %s)" % (argv0,),
                              fix="Pass its absolute path with --program, e.g. "
                                  "--program /opt/flocker-zfs/bin/flocker-zfs.")
    if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
        raise ConfigError("%s is not an executable file, so sshd could not run it as the "
                          "forced command" % (candidate,),
                          fix="Pass the installed flocker-zfs with --program.")
    return candidate


class _Init(object):
    """
    One run of ``init``: what was found, what will be and was done.
    """

    def __init__(self, options):
        self.options = options
        self.zfs = options.runner or ProcessRunner(options.reactor)
        self.tools = getattr(options, "tools", None) or ProcessRunner(options.reactor)
        self.pool = validate_pool_name(setting(options, "pool"))
        self.mount_root = validate_mount_root(setting(options, "mount_root"))
        self.node_file = _absolute("--node-file", setting(options, "node_file"))
        self.config_dir = _absolute("--config-dir", options.config_dir)
        self.state_path = os.path.join(self.config_dir, STATE_FILE)
        self.identity = validate_path("ssh identity", setting(options, "ssh_identity"))
        self.known_hosts = validate_path("ssh known_hosts", setting(options, "ssh_known_hosts"))
        self.size = parse_pool_size(options.pool_size)
        self.pool_file = (_absolute("--pool-file", options.pool_file)
                          if options.pool_file else None)
        self.device = _absolute("--device", options.device) if options.device else None
        port = validate_port(setting(options, "ssh_port"))
        self.peers = _unique(parse_peer(text, port) for text in options.peer)
        self.peer_from = validate_peer_from(options.peer_from) if options.peer_from else []
        self.peer_keys = list({key.text(): key for key in map(load_peer_key, options.peer_key)
                               }.values())
        self.install = (_absolute("--install-authorized-keys", options.install_authorized_keys)
                        if options.install_authorized_keys else None)
        if self.install and not self.peer_keys:
            raise ConfigError(
                "--install-authorized-keys needs the peers' public keys (--peer-key): "
                "this node's own key in its own authorized_keys would only let it reach "
                "itself", fix="Run `flocker-zfs init` on each peer; it prints the peer's "
                              "public key. Pass each with --peer-key KEY here.")
        self.program = resolve_program(options.program)
        self.created, self.reused = [], []
        self.state = None
        self.node_uuid = None
        self.pool_info = {}
        self.key_action = None
        self.key = None
        self.identity_existed = None
        self.host_keys = []
        self.lines = []

    # -- inspection: no change ---------------------------------------------------

    async def inspect(self):
        # Errors here (not installed, daemon not running) carry their fix.
        listing = await self.zfs.run(["zpool", "list", "-H", "-o", "name"])
        pools = listing.decode("utf-8", "replace").split()
        self.state = load_state(self.state_path)
        await self._inspect_pool(self.pool in pools)
        await self._check_tools()
        self.identity_existed = os.path.exists(self.node_file)
        if self.identity_existed:
            self.node_uuid = load_node_uuid(self.node_file, create=False)
        await self._inspect_key()
        await self._inspect_host_keys()
        self._inspect_authorized_keys()

    async def _check_tools(self):
        """
        Every program init runs is installed, before it changes anything (a
        pool made before a missing ssh-keygen is found would be left
        behind): zpool (just run), zfs, ssh-keygen, and ssh-keyscan for
        ``--peer``.
        """
        try:
            await self.zfs.run(commands.version())
        except ZFSNotInstalled:
            raise
        except ZFSError:
            pass    # zfs-fuse has no `zfs version`: it ran
        await require_tools(self.tools, ["ssh-keygen"] + (["ssh-keyscan"] if self.peers else []),
                            "init")

    async def _pool_guid(self):
        argv = commands.get_properties(self.pool, recursive=False, properties=("guid",))
        rows = commands.parse_properties(argv, await self.zfs.run(argv))
        return rows.get(self.pool, {}).get("guid", ("",))[0]

    async def _inspect_pool(self, exists):
        record = self.state["pools"].get(self.pool)
        asked = self.pool_file or self.device
        if exists:
            guid = await self._pool_guid()
            if record is not None and record.get("guid") == guid:
                if asked and record.get("vdev") and asked != record.get("vdev"):
                    raise InitRefused(
                        "pool %s already exists on %s (init created it there), not on %s"
                        % (self.pool, record["vdev"], asked),
                        fix="Leave out --pool-file/--device to reuse it, or pass --pool NAME "
                            "to create another pool.")
                self.pool_info = dict(record, action="reused")
                return
            if self.options.adopt_existing_pool:
                self.pool_info = {"action": "adopted", "guid": guid, "vdev": None,
                                  "kind": None, "created": False}
                return
            changed = ("; it is not the pool init created (its guid changed)"
                       if record is not None else "")
            raise InitRefused(
                "pool %s already exists and init did not create it%s; init never touches a "
                "pool it did not create" % (self.pool, changed),
                fix="Pass --pool NAME to create another pool, or --adopt-existing-pool to use "
                    "%s as it is." % (self.pool,))
        if self.device is not None:
            try:
                mode = os.stat(self.device).st_mode
            except OSError as error:
                raise ConfigError("device %s: %s" % (self.device, os.strerror(error.errno)),
                                  fix="Check the device path (lsblk lists them).")
            if not stat.S_ISBLK(mode):
                raise ConfigError("%s is not a block device" % (self.device,),
                                  fix="Use --pool-file for a file-backed pool.")
            self.pool_info = {"action": "create", "kind": "device", "vdev": self.device}
            return
        path = self.pool_file or os.path.join(DEFAULT_POOL_DIR, self.pool + ".img")
        if os.path.lexists(path):
            ours = any(rec.get("vdev") == path for rec in self.state["pools"].values())
            raise InitRefused(
                "pool file %s already exists but pool %s does not%s; init never overwrites "
                "a file" % (path, self.pool, " (init created both earlier: the pool is not "
                            "imported)" if ours else ""),
                fix="If the file holds pool %s, import it (`zpool import -d %s %s`) and run "
                    "init again%s; otherwise choose another --pool-file."
                    % (self.pool, os.path.dirname(path), self.pool,
                       "" if ours else " with --adopt-existing-pool"))
        self.pool_info = {"action": "create", "kind": "file", "vdev": path, "size": self.size}

    async def _derive_public(self):
        """The public half of the private key, from ssh-keygen (no passphrase)."""
        stdout = await run_tool(self.tools, ["ssh-keygen", "-y", "-P", "", "-f", self.identity])
        return parse_public_key(stdout.decode("utf-8", "replace"))

    async def _inspect_key(self):
        path, public = self.identity, self.identity + ".pub"
        record = self.state["ssh_keys"].get(path)
        if not os.path.lexists(path) and not os.path.lexists(public):
            self.key_action = "create"
            return
        if record is not None and not os.path.lexists(path):
            raise InitRefused(
                "SSH key %s is missing but its public half %s remains" % (path, public),
                fix="Restore the private key from backup, or remove %s to let init make a "
                    "new key (then authorize the new key on the peers)." % (public,))
        if not os.path.isfile(path) or (record is None and not self.options.adopt_existing_key):
            raise InitRefused(
                "SSH key %s%s already exists and init did not create it; init never replaces "
                "a key" % (path, "" if os.path.isfile(path) else ".pub"),
                fix="Pass --ssh-identity PATH for a new key elsewhere, or --adopt-existing-key "
                    "to use this one (it must have no passphrase).")
        mode = os.stat(path).st_mode & 0o777
        if mode & 0o077:
            raise InitRefused("SSH key %s is readable by others (mode %04o); ssh refuses it"
                              % (path, mode), fix="chmod 600 %s" % (path,))
        try:
            self.key = await self._derive_public()
        except ToolMissing:
            raise
        except ToolFailed as error:
            cause, fix = key_refusal(path, read_key_head(path), error)
            raise InitRefused("SSH key %s" % (cause,), fix=fix)
        if record is not None and record.get("public") == self.key.text():
            self.key_action = "reuse"
        elif self.options.adopt_existing_key:
            self.key_action = "adopt"
        else:
            # Only a recorded key gets here: an unrecorded one was refused above.
            raise InitRefused("SSH key %s is not the one init recorded (it was replaced)"
                              % (path,),
                              fix="Pass --adopt-existing-key to use it, or --ssh-identity PATH "
                                  "for a new key.")

    async def _inspect_host_keys(self):
        if not self.peers:
            return
        text = read_keys_file(self.known_hosts, "known_hosts",
                              fix="Give the known_hosts file with --ssh-known-hosts.")
        entries, _ = parse_known_hosts(text)
        for host, port in self.peers:
            argv = ["ssh-keyscan", "-T", "10", "-t", SCAN_ARGUMENT, "-p", str(port), "--", host]
            try:
                stdout = await run_tool(self.tools, argv)
            except ToolMissing:
                raise
            except ToolFailed as error:
                stdout, failure = b"", error
            else:
                failure = None
            offered = parse_keyscan(stdout)
            if not offered:
                raise NoHostKey("no SSH host key from %s port %d%s" % (
                    host, port, (" (%s)" % (failure.summary(),)) if failure else ""))
            decision = decide_host_key(host_token(host, port), self.known_hosts, entries,
                                       offered)
            self.host_keys.append(("%s:%d" % (host, port), decision))

    def _inspect_authorized_keys(self):
        command = serve_argv(self.program, self.pool, self.mount_root, self.node_file)
        self.lines = [[authorized_keys_line(command, key, self.peer_from), key, "printed"]
                      for key in self.peer_keys]
        if self.install is None:
            return
        existing = read_keys_file(
            self.install, "authorized_keys",
            fix="Give the authorized_keys file with --install-authorized-keys.").splitlines()
        for entry in self.lines:
            line, key = entry[0], entry[1]
            entry[2] = "install"
            wanted = split_authorized_line(line)
            for number, text in enumerate(existing, 1):
                found = split_authorized_line(text)
                if found is None or found[1].text() != key.text():
                    continue
                if found[0] != wanted[0]:
                    raise InitRefused(
                        "%s line %d already authorizes key %s with other options; init does "
                        "not change it" % (self.install, number, key.fingerprint()),
                        fix="Edit or remove line %d (the line init would add is printed by "
                            "`flocker-zfs init` without --install-authorized-keys), then run "
                            "init again." % (number,))
                entry[2] = "present"
                break

    # -- changes ----------------------------------------------------------------

    def _record(self, thing, created):
        (self.created if created else self.reused).append(thing)

    async def apply(self):
        try:
            await self._apply()
        except OSError as error:
            raise ConfigError("cannot write %s: %s" % (error.filename, os_reason(error)),
                              fix="Run init as root, or choose paths it can write; what it "
                                  "made so far is recorded, and the next run goes on from "
                                  "there.")

    async def _apply(self):
        _make_private_dir(self.config_dir)
        await self._apply_pool()
        save_state(self.state_path, self.state)
        self.node_uuid = load_node_uuid(self.node_file, create=True)
        self._record("node_identity", not self.identity_existed)
        await self._apply_key()
        save_state(self.state_path, self.state)
        self._apply_host_keys()
        self._apply_authorized_keys()

    async def _apply_pool(self):
        info = self.pool_info
        if info["action"] == "create":
            vdev = info["vdev"]
            made_file = False
            if info["kind"] == "file":
                _make_private_dir(os.path.dirname(vdev))
                fd = os.open(vdev, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                made_file = True
                try:
                    os.ftruncate(fd, self.size)     # sparse: no blocks written
                finally:
                    os.close(fd)
            try:
                # -m none: the pool's root is not mounted; datasets mount under
                # the mount root.  Never -f: a device or file in use is refused.
                await self.zfs.run(["zpool", "create", "-m", "none", self.pool, vdev])
            except ZFSError as error:
                if made_file:
                    os.remove(vdev)
                said = error.stderr.decode("utf-8", "replace").strip().splitlines()
                raise InitRefused("zpool could not create pool %s on %s: %s"
                                  % (self.pool, vdev, said[0] if said else error.summary()),
                                  fix="See zpool's message; init never forces (-f), so a "
                                      "device or file that holds data is left alone.")
            guid = await self._pool_guid()
            info = {"action": "created", "kind": info["kind"], "vdev": vdev, "guid": guid,
                    "created": True, "size": self.size if info["kind"] == "file" else None}
            self._record("pool_file" if info["kind"] == "file" else "pool_device", True)
            self._record("pool", True)
        else:
            self._record("pool", False)
        self.pool_info = info
        self.state["pools"][self.pool] = {key: info.get(key) for key in
                                          ("kind", "vdev", "guid", "created", "size")}

    async def _apply_key(self):
        if self.key_action == "create":
            _make_private_dir(os.path.dirname(self.identity))
            await run_tool(self.tools, [
                "ssh-keygen", "-q", "-t", "ed25519", "-N", "",
                "-C", "flocker-zfs@%s" % (self.node_uuid,), "-f", self.identity])
            os.chmod(self.identity, 0o600)
            self.key = read_public_key(self.identity + ".pub")
        self._record("ssh_key", self.key_action == "create")
        made = self.key_action == "create" or (
            self.key_action == "reuse"
            and bool(self.state["ssh_keys"].get(self.identity, {}).get("created")))
        # An adopted key (one init did not make, or one put in place of init's)
        # is recorded as it is now, so the next run reuses it without the flag.
        self.state["ssh_keys"][self.identity] = {
            "public": self.key.text(), "fingerprint": self.key.fingerprint(), "created": made}

    def _apply_host_keys(self):
        new = [decision for _, decision in self.host_keys if decision.record]
        _append(self.known_hosts, [known_hosts_line(d) for d in new], 0o644)
        for peer, decision in self.host_keys:
            self._record("known_hosts:%s" % (decision.token,), decision.record)

    def _apply_authorized_keys(self):
        if self.install is None:
            return
        new = [entry for entry in self.lines if entry[2] == "install"]
        _append(self.install, [entry[0] + "\n" for entry in new], 0o600)
        for entry in self.lines:
            self._record("authorized_keys:%s" % (entry[1].fingerprint(),),
                         entry[2] == "install")
            entry[2] = "installed" if entry[2] == "install" else "present"

    # -- the report ----------------------------------------------------------------

    def report(self):
        """
        :return: the JSON-able summary of this run.
        """
        # Without from=: the peer accepts this node's key from this node's
        # address, which only the operator knows.
        own = authorized_keys_line(
            serve_argv(self.program, self.pool, self.mount_root, self.node_file), self.key)
        pool = dict(self.pool_info, name=self.pool)
        pool["status"] = pool.pop("action")
        return {
            "node_uuid": self.node_uuid,
            "created": list(self.created),
            "reused": list(self.reused),
            "state_file": self.state_path,
            "node_identity": {"path": self.node_file,
                              "status": "reused" if self.identity_existed else "created"},
            "pool": pool,
            "ssh_key": {"path": self.identity, "public_key": self.key.line(),
                        "fingerprint": self.key.fingerprint(),
                        "status": {"create": "created", "reuse": "reused",
                                   "adopt": "adopted"}[self.key_action]},
            "known_hosts": {"path": self.known_hosts, "peers": [
                {"peer": peer, "entry": decision.token, "key_type": decision.key.key_type,
                 "fingerprint": decision.key.fingerprint(),
                 "status": "recorded" if decision.record else "present"}
                for peer, decision in self.host_keys]},
            "authorized_keys": {
                "file": self.install,
                "lines": [{"line": line, "fingerprint": key.fingerprint(), "status": status}
                          for line, key, status in self.lines],
                "own_key_line": own,
            },
        }


def _unique(items):
    """:return: ``items`` as a list without repeats, in their first order."""
    return list(dict.fromkeys(items))


def _make_private_dir(path):
    """Create ``path`` with mode 0700 if missing; an existing one is left as it is."""
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)


def _append(path, lines, mode):
    """
    Append ``lines`` to ``path`` (created with ``mode``, its directory 0700),
    starting on a new line; nothing is written when there is nothing to add.
    """
    if not lines:
        return
    _make_private_dir(os.path.dirname(path))
    created = not os.path.exists(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, mode)
    with os.fdopen(fd, "r+b") as handle:
        size = os.fstat(handle.fileno()).st_size
        prefix = b""
        if size:
            handle.seek(size - 1)
            if handle.read(1) != b"\n":
                prefix = b"\n"
        handle.write(prefix + "".join(lines).encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    if created:
        os.chmod(path, mode)


def _print_report(report, as_json, out):
    """
    Print what init found and did: one JSON object, or lines for a person.
    """
    if as_json:
        out.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
        return
    pool = report["pool"]
    where = ""
    if pool.get("vdev"):
        where = " on %s" % (pool["vdev"],)
        if pool.get("kind") == "file" and pool.get("size"):
            where += " (%s sparse file)" % (human_size(pool["size"]),)
    identity = report["node_identity"]
    key = report["ssh_key"]
    lines = [
        "node identity %s: %s (node %s)" % (
            identity["path"], identity["status"], report["node_uuid"]),
        "pool %s: %s%s" % (pool["name"], pool["status"], where),
        "SSH key %s: %s (%s)" % (key["path"], key["status"], key["fingerprint"]),
    ]
    peers = report["known_hosts"]["peers"]
    for peer in peers:
        lines.append("known_hosts %s: %s %s %s %s" % (
            report["known_hosts"]["path"], peer["status"], peer["entry"], peer["key_type"],
            peer["fingerprint"]))
    if any(peer["status"] == "recorded" for peer in peers):
        lines.append("  Compare each new fingerprint with what the peer itself reports: "
                     "`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on its console.")
    authorized = report["authorized_keys"]
    if authorized["file"] is not None:
        for entry in authorized["lines"]:
            lines.append("authorized_keys %s: %s peer key %s" % (
                authorized["file"], entry["status"], entry["fingerprint"]))
    elif authorized["lines"]:
        lines.append("")
        lines.append("Add these lines to /root/.ssh/authorized_keys (or run again with "
                     "--install-authorized-keys):")
        lines.extend(entry["line"] for entry in authorized["lines"])
    lines += [
        "",
        "This node's public key; authorize it on each peer with",
        "  flocker-zfs init --peer-key '%s' --install-authorized-keys" % (key["public_key"],),
        key["public_key"],
        "",
        "The authorized_keys line for this key on a peer set up like this node "
        "(same program, pool, mount root and node file; add from=\"<this node's address>\" "
        "after restrict, to accept it from there only):",
        authorized["own_key_line"],
    ]
    out.write("\n".join(lines) + "\n")
