# test-case-name: flocker_zfs.test.test_cli
"""
The ``flocker-zfs`` command line (also ``python -m flocker_zfs``).

Each subcommand builds a :class:`ZFSBackend` from its options, runs one
operation on the reactor and prints the result, as a table or as ``--json``.
A user mistake or a failed operation prints one line, ``flocker-zfs: error:
<cause>. Fix: <fix>``, and exits 1; never a traceback.
"""

import argparse
import json
import os
import sys
import uuid

from twisted.internet.defer import Deferred
from twisted.internet.task import react

from ._backend import ZFSBackend
from ._peerserve_main import DEFAULT_LOCK_DIR, serve_main
from ._replication import Replicator
from ._ssh import SSHConfig, validate_host, validate_port
from ._sshpeer import SSHPeer
from .errors import ConfigError, FlockerZFSError, InvalidName
from .node import DEFAULT_NODE_FILE, load_node_uuid

DEFAULT_POOL = "flocker"
DEFAULT_MOUNT_ROOT = "/flocker"


def _size(text):
    """
    Parse a size such as ``1073741824``, ``512M`` or ``10G`` into bytes.
    """
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    text = text.strip()
    if text.lower() == "none":
        return None
    scale = 1
    if text and text[-1].upper() in units:
        scale = units[text[-1].upper()]
        text = text[:-1]
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "invalid size %r: use bytes or a number with K, M, G or T" % (text,))
    return value * scale


def _human(value):
    if value is None:
        return "-"
    for unit, scale in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if value >= scale:
            return "%.1f%s" % (value / scale, unit)
    return str(value)


def _dataset_json(dataset, node_uuid):
    return {
        "dataset_id": dataset.dataset_id,
        "owner": dataset.owner,
        "owned_here": dataset.owned_by(node_uuid),
        "writable": dataset.writable,
        "generation": dataset.generation,
        "maximum_size": dataset.maximum_size,
        "used": dataset.used,
        "referenced": dataset.referenced,
        "mountpoint": dataset.mountpoint,
        "mounted": dataset.mounted,
        "origin": dataset.origin,
        "snapshots": [{"name": s.name, "guid": str(s.guid)} for s in dataset.snapshots],
    }


def _status_table(state, node_uuid):
    rows = [("DATASET", "OWNER", "GEN", "STATE", "MAX SIZE", "USED", "NEWEST SNAPSHOT",
             "MOUNTPOINT")]
    for dataset_id in sorted(state.datasets):
        dataset = state.datasets[dataset_id]
        newest = dataset.newest_snapshot()
        rows.append((
            dataset_id,
            "this node" if dataset.owned_by(node_uuid) else (dataset.owner or "?"),
            str(dataset.generation),
            "writable" if dataset.writable else (
                "handing off" if dataset.handoff else "replica"),
            _human(dataset.maximum_size),
            _human(dataset.used),
            newest.name if newest else "-",
            dataset.mountpoint or "-",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in rows]
    if not state.datasets:
        lines.append("(no datasets in pool %s)" % (state.pool,))
    for name in state.ignored:
        lines.append("ignored (not managed by flocker-zfs): %s" % (name,))
    return "\n".join(lines)


async def _status(backend, options, out):
    state = await backend.discover()
    if options.json:
        out.write(json.dumps({
            "pool": state.pool,
            "node_uuid": backend.node_uuid if options.identity else None,
            "implementation": backend.capabilities.implementation,
            "datasets": [_dataset_json(state.datasets[k], backend.node_uuid)
                         for k in sorted(state.datasets)],
            "ignored": list(state.ignored),
        }, indent=2) + "\n")
    else:
        out.write("pool %s (%s), node %s\n" % (
            state.pool, backend.capabilities.implementation,
            backend.node_uuid if options.identity else "(no identity yet)"))
        out.write(_status_table(state, backend.node_uuid) + "\n")


def _report(dataset, options, out, verb):
    if options.json:
        out.write(json.dumps(_dataset_json(dataset, options.node_uuid), indent=2) + "\n")
    else:
        out.write("%s %s (max size %s) at %s\n" % (
            verb, dataset.dataset_id, _human(dataset.maximum_size), dataset.mountpoint))


async def _create(backend, options, out):
    dataset_id = options.dataset_id or str(uuid.uuid4())
    _report(await backend.create(dataset_id, options.size), options, out, "created")


async def _resize(backend, options, out):
    _report(await backend.resize(options.dataset_id, options.size), options, out, "resized")


async def _destroy(backend, options, out):
    await backend.destroy(options.dataset_id, force=options.force)
    if options.json:
        out.write(json.dumps({"destroyed": options.dataset_id}) + "\n")
    else:
        out.write("destroyed %s\n" % (options.dataset_id,))


async def _snapshot(backend, options, out):
    snapshot = await backend.snapshot(options.dataset_id, options.name)
    if options.json:
        out.write(json.dumps({"dataset_id": options.dataset_id, "name": snapshot.name,
                              "guid": str(snapshot.guid)}) + "\n")
    else:
        out.write("snapshot %s@%s\n" % (options.dataset_id, snapshot.name))


DEFAULT_IDENTITY = "/etc/flocker/id_rsa_flocker"
DEFAULT_KNOWN_HOSTS = "/etc/flocker/known_hosts"


def parse_peer(text, default_port):
    """
    ``HOST``, ``HOST:PORT`` or ``[IPV6]:PORT`` -> ``(host, port)``, validated.

    :raises InvalidName: a bad host or port.
    """
    host, port = text, default_port
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise InvalidName("invalid peer %r: use HOST, HOST:PORT or [IPV6]:PORT" % (text,))
        host, port = inside, (rest[1:] or port)
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        port = validate_port(int(port)) if not isinstance(port, int) else validate_port(port)
    except ValueError:
        raise InvalidName("invalid peer port in %r: must be a number from 1 to 65535" % (text,))
    return validate_host(host), port


def _check_ssh_files(options):
    """
    The identity and known_hosts files exist and are private enough, so a
    mistake gets a clear message instead of an ssh refusal.
    """
    identity, known = options.ssh_identity, options.ssh_known_hosts
    if not os.path.isfile(identity):
        raise ConfigError("SSH identity file %s does not exist" % (identity,),
                          fix="Create it (ssh-keygen -t ed25519 "
                              "-N '' -f %s), or pass --ssh-identity." % (identity,))
    if os.stat(identity).st_mode & 0o077:
        raise ConfigError("SSH identity file %s is readable by others; ssh refuses it"
                          % (identity,), fix="chmod 600 %s" % (identity,))
    if not os.path.isfile(known):
        raise ConfigError("known_hosts file %s does not exist, so no peer's host key is "
                          "trusted" % (known,),
                          fix="Record each peer's host key there (`ssh-keyscan -p PORT HOST "
                              ">> %s`, after checking the fingerprint), or pass "
                              "--ssh-known-hosts." % (known,))


def _ssh_config(options):
    _check_ssh_files(options)
    return SSHConfig(identity=options.ssh_identity, known_hosts=options.ssh_known_hosts,
                     port=options.ssh_port, ciphers=options.ssh_cipher)


class _Progress(object):
    """
    A one-line progress display on a terminal (nothing otherwise).
    """

    def __init__(self, reactor, stream, label):
        self._reactor = reactor
        self._stream = stream
        self._label = label
        self._started = reactor.seconds()
        self._shown = False

    def __call__(self, sent, total=None):
        if not getattr(self._stream, "isatty", lambda: False)():
            return
        elapsed = max(self._reactor.seconds() - self._started, 1e-6)
        rate = sent / elapsed
        if total:
            fraction = min(sent / total, 1.0)
            bar = "#" * int(fraction * 30)
            left = max(total - sent, 0) / rate if rate else 0
            line = "[%-30s] %3d%% %s of ~%s, %s/s, ~%ds left" % (
                bar, fraction * 100, _human(sent), _human(total), _human(int(rate)), left)
        else:
            line = "%s sent, %s/s" % (_human(sent), _human(int(rate)))
        self._stream.write("\r%s: %s   " % (self._label, line))
        self._stream.flush()
        self._shown = True

    def done(self):
        if self._shown:
            self._stream.write("\n")


def _peer(options):
    """
    The ``IPeer`` named on the command line (validated first).
    """
    host, port = parse_peer(options.peer, options.ssh_port)
    return options.make_peer(options.reactor, _ssh_config(options), host, port)


async def _transfer(backend, options, verb):
    """
    Run ``Replicator.<verb>`` with a progress display.
    """
    peer = _peer(options)
    progress = _Progress(options.reactor, options.err,
                         "%s %s" % (verb, options.dataset_id))
    try:
        operation = getattr(Replicator(backend, options.reactor), verb)
        return await operation(options.dataset_id, peer, progress=progress)
    finally:
        progress.done()


async def _push(backend, options, out):
    result = await _transfer(backend, options, "push")
    if options.json:
        # GUIDs as strings: JSON readers lose precision above 2**53.
        out.write(json.dumps(dict(result.serialize(), guid=str(result.guid))) + "\n")
    else:
        out.write("pushed %s to %s: snapshot %s (%s), %s in %.2f s\n" % (
            result.dataset_id, options.peer, result.snapshot,
            "incremental from %s" % (result.base,) if result.base else "full stream",
            _human(result.bytes) or "0", result.duration))


async def _handoff(backend, options, out):
    result = await _transfer(backend, options, "handoff")
    if options.json:
        out.write(json.dumps(result.serialize()) + "\n")
    elif result.already:
        out.write("%s is already owned by %s (generation %d); nothing to do\n" % (
            result.dataset_id, options.peer, result.generation))
    else:
        out.write("handed off %s to %s: generation %d, %d pre-copy round(s), %s sent, "
                  "unwritable for %.2f s\n" % (
                      result.dataset_id, options.peer, result.generation, result.rounds,
                      _human(result.bytes), result.unwritable))


async def _recover(backend, options, out):
    peer = _peer(options)
    outcome = await Replicator(backend, options.reactor).recover(
        options.dataset_id, peer, abort=options.abort)
    if options.json:
        out.write(json.dumps({"dataset_id": options.dataset_id, "outcome": outcome}) + "\n")
    else:
        out.write({"owner": "%s: this node is the writable owner\n",
                   "replica": "%s: the peer owns it; this node keeps a read-only replica\n",
                   "none": "%s: no handoff in progress; nothing to do\n"}[outcome]
                  % (options.dataset_id,))


def _parser():
    parser = argparse.ArgumentParser(
        prog="flocker-zfs",
        description="Manage flocker datasets in a local ZFS pool.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--pool", default=DEFAULT_POOL,
                        help="ZFS pool holding the datasets (default: %(default)s)")
    common.add_argument("--mount-root", default=DEFAULT_MOUNT_ROOT,
                        help="directory datasets are mounted under (default: %(default)s)")
    common.add_argument("--node-file", default=DEFAULT_NODE_FILE,
                        help="this node's identity file (default: %(default)s)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    status = commands.add_parser("status", parents=[common],
                                 help="list the datasets in the pool")
    status.set_defaults(run=_status, creates_identity=False)

    create = commands.add_parser("create", parents=[common], help="create a dataset")
    create.add_argument("dataset_id", nargs="?", help="a lowercase UUID (default: a new one)")
    create.add_argument("--size", type=_size, default=None,
                        help="maximum size, e.g. 10G (default: no limit)")
    create.set_defaults(run=_create, creates_identity=True)

    resize = commands.add_parser("resize", parents=[common],
                                 help="change a dataset's maximum size")
    resize.add_argument("dataset_id")
    resize.add_argument("size", type=_size, help="new maximum size, e.g. 20G, or 'none'")
    resize.set_defaults(run=_resize, creates_identity=False)

    destroy = commands.add_parser("destroy", parents=[common],
                                  help="destroy a dataset and its snapshots")
    destroy.add_argument("dataset_id")
    destroy.add_argument("--force", action="store_true",
                         help="also destroy snapshots flocker-zfs did not take")
    destroy.set_defaults(run=_destroy, creates_identity=False)

    snapshot = commands.add_parser("snapshot", parents=[common], help="snapshot a dataset")
    snapshot.add_argument("dataset_id")
    snapshot.add_argument("--name", default=None, help="snapshot name (default: generated)")
    snapshot.set_defaults(run=_snapshot, creates_identity=False)

    peering = argparse.ArgumentParser(add_help=False)
    peering.add_argument("dataset_id", help="the dataset's id (a lowercase UUID)")
    peering.add_argument("peer", help="the peer: HOST, HOST:PORT or [IPV6]:PORT")
    peering.add_argument("--ssh-identity", default=DEFAULT_IDENTITY,
                         help="private key for peers (default: %(default)s)")
    peering.add_argument("--ssh-known-hosts", default=DEFAULT_KNOWN_HOSTS,
                         help="pinned host keys of the peers (default: %(default)s)")
    peering.add_argument("--ssh-port", type=int, default=22,
                         help="peers' SSH port unless PEER says (default: %(default)s)")
    peering.add_argument("--ssh-cipher", default=None,
                         help="e.g. aes128-gcm@openssh.com (default: ssh's choice)")

    push = commands.add_parser("push", parents=[common, peering],
                               help="send a dataset's changes to a peer's read-only replica")
    push.set_defaults(run=_push, creates_identity=False)

    handoff = commands.add_parser("handoff", parents=[common, peering],
                                  help="make a peer the dataset's writable owner")
    handoff.set_defaults(run=_handoff, creates_identity=False)

    recover = commands.add_parser(
        "recover", parents=[common, peering],
        help="settle an interrupted handoff: ask the peer, then finish it (send the final "
             "snapshot and acquire as needed) or, with --abort, take the dataset back")
    recover.add_argument("--abort", action="store_true",
                         help="take the dataset back if the peer provably did not take it")
    recover.set_defaults(run=_recover, creates_identity=False)

    # The forced command of the peer key in authorized_keys: answers one peer
    # request from SSH_ORIGINAL_COMMAND (see flocker_zfs._peerserve_main).
    serve = commands.add_parser("peer-serve", help="answer one request from a peer "
                                "(run by sshd as the peer key's forced command)")
    serve.add_argument("--pool", default=DEFAULT_POOL,
                       help="ZFS pool holding the datasets (default: %(default)s)")
    serve.add_argument("--mount-root", default=DEFAULT_MOUNT_ROOT,
                       help="directory datasets are mounted under (default: %(default)s)")
    serve.add_argument("--node-file", default=DEFAULT_NODE_FILE,
                       help="this node's identity file (default: %(default)s)")
    serve.add_argument("--lock-dir", default=DEFAULT_LOCK_DIR,
                       help="per-dataset lock files (default: %(default)s)")
    serve.add_argument("--log-file", default=None,
                       help="append eliot JSON logs of each request here")
    serve.set_defaults(run=None, creates_identity=False)
    return parser


def _identity(options):
    """
    This node's uuid.  Read-only commands work before the identity exists:
    they use a throw-away uuid and say so.
    """
    try:
        node_uuid = load_node_uuid(options.node_file, create=options.creates_identity)
        options.identity = True
    except ConfigError:
        if options.creates_identity:
            raise
        node_uuid = str(uuid.uuid4())
        options.identity = False
    options.node_uuid = node_uuid
    return node_uuid


def run(reactor, argv, out, err, runner=None, make_peer=SSHPeer):
    """
    Run one command line on ``reactor``.

    :param runner: the ``IRunner`` for zfs commands (tests pass a fake);
        default a process runner on ``reactor``.
    :param make_peer: ``callable(reactor, ssh_config, host, port)`` returning
        an ``IPeer`` (tests pass fake peers).
    :return: ``Deferred`` firing with the exit status.
    """
    options = _parser().parse_args(argv)
    options.reactor, options.err, options.make_peer = reactor, err, make_peer

    async def go():
        try:
            backend = ZFSBackend(reactor, options.pool, options.mount_root,
                                 _identity(options), runner=runner)
            await options.run(backend, options, out)
        except FlockerZFSError as error:
            err.write("flocker-zfs: error: %s\n" % (error,))
            return 1
        return 0
    return Deferred.fromCoroutine(go())


def main(argv=None):
    """
    Console-script entry point.
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["peer-serve"]:
        options = _parser().parse_args(argv)
        # fd 0 is the ssh channel: a receive's stream goes from it to zfs.
        sys.exit(serve_main(options, os.environ, 0, sys.stdout, sys.stderr))

    def go(reactor):
        d = run(reactor, argv, sys.stdout, sys.stderr)
        d.addCallback(lambda status: sys.exit(status) if status else None)
        return d
    react(go)
