# test-case-name: flocker_zfs.test.test_cli
"""
The ``flocker-zfs`` command line (also ``python -m flocker_zfs``): parsing
the arguments and running one command; :mod:`flocker_zfs._clireport`
formats what is printed.  ``docs/cli.rst`` describes the commands, the
options every command shares (``--config``, ``--log-file``, ``--json``) and
the exit statuses.
"""

import argparse
import functools
import os
import sys
import uuid

from eliot import add_destinations, remove_destination, write_traceback
from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.internet.task import react

from . import _clireport as report
from . import _doctor, _init
from ._backend import MINIMUM_SIZE, ZFSBackend
from ._config import DEFAULT_CONFIG, ZFSSettings, load_config
from ._peerserve_main import DEFAULT_LOCK_DIR, serve_main
from ._plugin import lock_dir_for
from ._protocol import encode_error
from ._replication import Replicator
from ._ssh import SSHConfig, parse_peer
from ._sizes import InvalidSize, parse_size
from ._sshpeer import SSHPeer
from .errors import ConfigError, FlockerZFSError
from .node import load_node_uuid

#: ``ZFSSettings`` fields that are also options; an option left out takes
#: the config's value (or the built-in default).
SETTINGS_OPTIONS = ("pool", "mount_root", "node_file", "ssh_identity", "ssh_known_hosts",
                    "ssh_port", "ssh_cipher", "lock_dir")

#: Set to ``1`` to print the traceback of an unexpected error on stderr.
DEBUG_VARIABLE = report.DEBUG_VARIABLE

_EXIT_STATUSES = """\
exit status: 0 success; 1 failed or refused, with one line on stderr:
`flocker-zfs: error: <cause>. Fix: <fix>`; 2 an unexpected error (a bug):
its traceback is in the --log-file (and on stderr with FLOCKER_ZFS_DEBUG=1).
"""


class UsageError(ConfigError):
    """
    The command line itself is wrong (unknown option, missing argument ...).
    """


class _Exit(Exception):
    """``--help`` was answered: stop with ``status``, printing nothing more."""

    def __init__(self, status):
        Exception.__init__(self, status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """
    An ``ArgumentParser`` that prints help on the run's own ``out`` and
    raises instead of exiting, so :func:`run` works inside a test.
    """

    def __init__(self, *args, out, **kwargs):
        argparse.ArgumentParser.__init__(self, *args, **kwargs)
        self._out = out

    def parse_args(self, args=None, namespace=None):
        options, extras = self.parse_known_args(args, namespace)
        if extras:
            # Name the subcommand, whose --help lists what it takes.
            command = getattr(options, "command", None)
            raise UsageError("%sunrecognized arguments: %s" % (
                command + ": " if command else "", " ".join(extras)),
                fix="See `%s --help`." % (" ".join(filter(None, [self.prog, command])),))
        return options

    def print_help(self, file=None):
        self._out.write(self.format_help())

    def print_usage(self, file=None):
        self._out.write(self.format_usage())

    def exit(self, status=0, message=None):
        raise _Exit(status)

    def error(self, message):
        command = self.prog.partition(" ")[2]
        raise UsageError("%s%s" % (command + ": " if command else "", message),
                         fix="See `%s --help`." % (self.prog,))


# -- the commands that act on the local pool -------------------------------

async def _status(backend, options, out):
    state = await backend.discover()
    node_uuid = backend.node_uuid
    if options.json:
        out.write(report.dumps(report.status_json(
            state, node_uuid, options.identity, backend.capabilities)))
        return
    capabilities = backend.capabilities
    out.write("pool %s (%s%s), node %s\n" % (
        state.pool, capabilities.implementation,
        " " + capabilities.version if capabilities.version else "",
        node_uuid if options.identity else "(no identity yet)"))
    out.write(report.status_table(state, node_uuid, report.terminal_width(out)))


def _dataset_report(dataset, options, out, verb):
    if options.json:
        out.write(report.dumps(report.dataset_json(dataset, options.node_uuid)))
    else:
        out.write(report.dataset_line(verb, dataset))


async def _create(backend, options, out):
    # Only a left-out id makes a new one: "" is a bad id, not a request.
    dataset_id = str(uuid.uuid4()) if options.dataset_id is None else options.dataset_id
    dataset = await backend.create(dataset_id, options.size)
    _dataset_report(dataset, options, out, "created")


async def _resize(backend, options, out):
    dataset = await backend.resize(options.dataset_id, options.size)
    _dataset_report(dataset, options, out, "resized")


async def _destroy(backend, options, out):
    await backend.destroy(options.dataset_id, force=options.force)
    if options.json:
        out.write(report.dumps({"destroyed": options.dataset_id}))
    else:
        out.write("destroyed %s\n" % (options.dataset_id,))


async def _snapshot(backend, options, out):
    snapshot = await backend.snapshot(options.dataset_id, options.name)
    if options.json:
        out.write(report.dumps(dict(report.snapshot_json(snapshot),
                                    dataset_id=options.dataset_id)))
    else:
        out.write("snapshot %s@%s\n" % (options.dataset_id, snapshot.name))


# -- the commands that talk to a peer --------------------------------------

def _check_ssh_files(options):
    """
    The identity and known_hosts files exist and are private enough, so a
    mistake gets a clear message instead of an ssh refusal.
    """
    identity, known = options.ssh_identity, options.ssh_known_hosts
    if not os.path.isfile(identity):
        raise ConfigError("SSH identity file %s does not exist" % (identity,),
                          fix="Create it (`flocker-zfs init`, or ssh-keygen -t ed25519 "
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


def _peer(options):
    """
    The ``IPeer`` named on the command line (validated first).
    """
    host, port = parse_peer(options.peer, options.ssh_port)
    _check_ssh_files(options)
    config = SSHConfig(identity=options.ssh_identity, known_hosts=options.ssh_known_hosts,
                       port=options.ssh_port, ciphers=options.ssh_cipher)
    return options.make_peer(options.reactor, config, host, port)


async def _transfer(backend, options, verb):
    """
    Run ``Replicator.<verb>`` with a progress bar on stderr.
    """
    peer = _peer(options)
    progress = report.Progress(options.reactor, options.err,
                               "%s %s" % (verb, options.dataset_id))
    try:
        operation = getattr(Replicator(backend, options.reactor), verb)
        return await operation(options.dataset_id, peer, progress=progress)
    finally:
        progress.done()


async def _push(backend, options, out):
    result = await _transfer(backend, options, "push")
    out.write(report.dumps(report.push_json(result)) if options.json
              else report.push_line(result, options.peer))


async def _handoff(backend, options, out):
    result = await _transfer(backend, options, "handoff")
    out.write(report.dumps(report.handoff_json(result)) if options.json
              else report.handoff_line(result, options.peer))


async def _recover(backend, options, out):
    peer = _peer(options)
    outcome = await Replicator(backend, options.reactor).recover(
        options.dataset_id, peer, abort=options.abort)
    out.write(report.dumps({"dataset_id": options.dataset_id, "outcome": outcome})
              if options.json else report.recover_line(options.dataset_id, outcome))


# -- the agent ---------------------------------------------------------------

async def _agent(options, out, err):
    """
    Run the reference agent until the reactor shuts down (SIGTERM, SIGINT).
    """
    # Imported here: peer-serve, run by sshd for every request, never needs it.
    from ._agent import agent_from_config
    if options.config is None:
        raise ConfigError("the agent needs a configuration file, and %s does not exist"
                          % (options.default_config,),
                          fix="Write one (see the configuration documentation) or pass "
                              "--config PATH.")
    reactor = options.reactor
    make_peer = None
    if options.make_peer is not SSHPeer:
        # An injected peer factory (tests): give it the agent's node addresses.
        make_peer = functools.partial(_node_peer, options, options.config.settings)
    service = await agent_from_config(reactor, options.config, runner=options.runner,
                                      make_peer=make_peer)
    stopped = Deferred()

    def shutdown():
        d = maybeDeferred(service.stopService)
        d.addBoth(stopped.callback)
        return d
    # 'before' 'shutdown': the reactor waits for the service to stop (running
    # transfers finish or are cancelled) before it goes down.
    reactor.addSystemEventTrigger("before", "shutdown", shutdown)
    console = report.AgentConsole(err)
    add_destinations(console)
    try:
        service.startService()
        out.write("flocker-zfs agent: running (config %s, node %s); stop it with SIGTERM "
                  "or Ctrl-C\n" % (options.config.source, service.node_uuid))
        report.flush(out)
        await stopped
    finally:
        remove_destination(console)
    out.write("flocker-zfs agent: stopped\n")
    return 0


def _node_peer(options, settings, node):
    """An ``IPeer`` for a deployment ``NodeAddress`` from the run's ``make_peer``."""
    return options.make_peer(options.reactor, settings.ssh_config(), node.address,
                             node.ssh_port)


# -- parser --------------------------------------------------------------------

def _parser(out):
    """
    :return: the parser; ``--help`` output goes to ``out``.
    """
    defaults = ZFSSettings()
    make = functools.partial(_Parser, out=out)
    parser = make(prog="flocker-zfs", epilog=_EXIT_STATUSES,
                  description="Manage flocker datasets in a local ZFS pool, replicate them "
                              "to peers over SSH, and run the reference dataset agent.")
    base = argparse.ArgumentParser(add_help=False)
    base.add_argument("--config", metavar="PATH",
                      help="agent configuration (agent.yml); its dataset settings are the "
                           "defaults of this command's options (default: %s if it exists, "
                           "else built-in defaults)" % (DEFAULT_CONFIG,))
    base.add_argument("--log-file", metavar="PATH",
                      help="append eliot JSON log lines here (read them with eliot-tree); "
                           "a new file gets mode 0600")
    pool = argparse.ArgumentParser(add_help=False)
    for flag, metavar, what in (("--pool", "NAME", "ZFS pool holding the datasets"),
                                ("--mount-root", "DIR", "directory datasets are mounted under"),
                                ("--node-file", "PATH", "this node's identity file")):
        pool.add_argument(flag, metavar=metavar,
                          help="%s (default: the config's, else %s)"
                               % (what, getattr(defaults, flag[2:].replace("-", "_"))))
    common = argparse.ArgumentParser(add_help=False, parents=[base, pool])
    common.add_argument("--json", action="store_true",
                        help="print one JSON document on stdout, for scripts")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=make)
    commands.required = True

    def command(name, run, help, parents=(common,), **kwargs):
        sub = commands.add_parser(name, parents=list(parents), help=help,
                                  description=kwargs.pop("description", help))
        sub.set_defaults(run=run, creates_identity=kwargs.pop("creates_identity", False))
        return sub

    command("status", _status, "list the datasets in the pool: owner, state, size limit, "
            "used space, newest snapshot, replicas")
    create = command("create", _create, "create a dataset owned by this node",
                     creates_identity=True)
    create.add_argument("dataset_id", nargs="?", help="a lowercase UUID (default: a new one)")
    create.add_argument("--size", type=_size, default=None,
                        help="size limit, e.g. 10G or 1.5T (default: none)")
    resize = command("resize", _resize, "change a dataset's size limit")
    resize.add_argument("dataset_id")
    resize.add_argument("size", type=_size, help="new size limit, e.g. 20G, or 'none'")
    destroy = command("destroy", _destroy, "destroy a dataset and its snapshots")
    destroy.add_argument("dataset_id")
    destroy.add_argument("--force", action="store_true",
                         help="also destroy snapshots flocker-zfs did not take")
    snapshot = command("snapshot", _snapshot, "snapshot a dataset")
    snapshot.add_argument("dataset_id")
    snapshot.add_argument("--name", default=None, help="snapshot name (default: generated)")

    ssh = _ssh_parent(defaults)
    peering = argparse.ArgumentParser(add_help=False, parents=[ssh])
    peering.add_argument("dataset_id", help="the dataset's id (a lowercase UUID)")
    peering.add_argument("peer", help="the peer: HOST, HOST:PORT or [IPV6]:PORT")
    peering.add_argument("--ssh-cipher", metavar="CIPHER",
                         help="e.g. aes128-gcm@openssh.com (default: the config's, else "
                              "ssh's choice)")
    command("push", _push, "send a dataset's changes to a peer's read-only replica",
            parents=(common, peering))
    command("handoff", _handoff, "make a peer the dataset's writable owner",
            parents=(common, peering))
    recover = command(
        "recover", _recover, "settle an interrupted handoff: ask the peer, then finish it "
        "(or, with --abort, take the dataset back)", parents=(common, peering))
    recover.add_argument("--abort", action="store_true",
                         help="take the dataset back if the peer provably did not take it")

    agent = command("agent", None, "run the reference dataset agent until SIGTERM or SIGINT",
                    parents=(base,),
                    description="Run the reference agent: converge this node to the "
                                "deployment file named in the configuration, until SIGTERM "
                                "or SIGINT. Needs --config (or %s)." % (DEFAULT_CONFIG,))
    agent.set_defaults(standalone=_agent, json=False)
    for module in (_init, _doctor):     # each adds its own standalone command
        module.register(commands, common, ssh)

    # The forced command of the peer key in authorized_keys: answers one peer
    # request from SSH_ORIGINAL_COMMAND (see flocker_zfs._peerserve_main).
    serve = command("peer-serve", None, "answer one request from a peer (run by sshd as the "
                    "peer key's forced command)", parents=(base, pool))
    serve.add_argument("--lock-dir", default=None, metavar="DIR",
                       help="per-dataset lock files, shared with the agent and the other "
                            "commands (default: lock_dir of the configuration, else %s)"
                            % (DEFAULT_LOCK_DIR,))
    serve.set_defaults(json=False)
    return parser


def _size(text):
    """
    The ``--size`` of ``create`` and the size of ``resize``: ``none``, or a
    size of at least 1M (what the backend accepts), so a bad one is a usage
    error before anything runs.

    :return: bytes, or ``None`` for no limit.
    :raises argparse.ArgumentTypeError: not such a size (argparse puts the
        argument's name in front).
    """
    if text.strip().lower() == "none":
        return None
    try:
        return parse_size(text, minimum=MINIMUM_SIZE)
    except InvalidSize as error:
        raise argparse.ArgumentTypeError(error.summary())


def _ssh_parent(defaults):
    """
    :return: a parent parser with the options naming this node's SSH key,
        the peers' pinned host keys and their port, shared by the commands
        that reach peers (``push``, ``handoff``, ``recover``, ``init``,
        ``doctor``).  Left out, they are ``None`` and take the config's
        value, or the built-in default.
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--ssh-identity", metavar="PATH",
                        help="this node's private key for reaching peers (default: the "
                             "config's, else %s)" % (defaults.ssh_identity,))
    parser.add_argument("--ssh-known-hosts", metavar="PATH",
                        help="pinned host keys of the peers (default: the config's, else %s)"
                             % (defaults.ssh_known_hosts,))
    parser.add_argument("--ssh-port", type=int, metavar="PORT",
                        help="peers' SSH port where the peer names none (default: the "
                             "config's, else %d)" % (defaults.ssh_port,))
    return parser


# -- running a command line ---------------------------------------------------

def _apply_config(options, default_config):
    """
    Load ``--config`` (or ``default_config`` if it exists) into
    ``options.config``, and fill every settings option left out with the
    config's value, or the built-in default.

    :raises ConfigError: the config is invalid, or is for another backend.
    """
    path = options.config
    if path is None and os.path.exists(default_config):
        path = default_config
    options.default_config = default_config
    options.config = load_config(path) if path is not None else None
    settings = ZFSSettings() if options.config is None else options.config.settings
    if not isinstance(settings, ZFSSettings):
        raise ConfigError(
            "%s configures backend %r; these commands manage the zfs backend"
            % (options.config.source, options.config.backend),
            fix="Pass --config with an agent.yml whose dataset backend is zfs.")
    for name in SETTINGS_OPTIONS:
        if getattr(options, name, None) is None:
            setattr(options, name, getattr(settings, name))
    options.settings = settings


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


async def _dispatch(options, out, err, default_config, debug):
    log = None
    try:
        log = report.LogFile(options.log_file) if options.log_file else None
        _apply_config(options, default_config)
        standalone = getattr(options, "standalone", None)
        if standalone is _agent:
            return await _agent(options, out, err)      # it handles shutdown itself
        if standalone is not None:
            status = await _interruptible(options.reactor, standalone(options, out, err))
            return 0 if status is None else status
        if options.run is None:
            raise ConfigError("peer-serve answers requests from sshd, not from a terminal",
                              fix="Use it only as the forced command of the peer key in "
                                  "authorized_keys.")
        # The per-dataset lock files peer-serve and the agent take too, so a
        # command never runs on a dataset while a peer is receiving into it.
        backend = ZFSBackend(options.reactor, options.pool, options.mount_root,
                             _identity(options), runner=options.runner,
                             lock_dir=lock_dir_for(options.settings, options.runner))
        await _interruptible(options.reactor, options.run(backend, options, out))
        return 0
    except FlockerZFSError as error:
        return report.fail(error, options.json, out, err)
    except CancelledError:
        return report.fail(ConfigError(
            "interrupted (SIGINT or SIGTERM) before %s finished; its commands were stopped"
            % (options.command,),
            fix="Run it again: an interrupted transfer continues from the last complete "
                "snapshot, and `flocker-zfs recover` settles an interrupted handoff."),
            options.json, out, err)
    except Exception as error:
        write_traceback()
        return report.unexpected(error, options.log_file if log else None, err, debug)
    finally:
        if log is not None:
            log.close()


async def _interruptible(reactor, coroutine):
    """
    Run ``coroutine``, cancelling it (which kills its child processes) if
    the reactor shuts down first (SIGINT, SIGTERM).

    :raises CancelledError: it was interrupted.
    """
    d = Deferred.fromCoroutine(coroutine)
    if not hasattr(reactor, "addSystemEventTrigger"):
        return await d      # a bare test clock: it never shuts down
    trigger = reactor.addSystemEventTrigger("before", "shutdown", d.cancel)
    try:
        return await d
    finally:
        try:
            reactor.removeSystemEventTrigger(trigger)
        except NotImplementedError:
            pass    # MemoryReactor (tests) cannot; a cancel of a fired Deferred is a no-op


def run(reactor, argv, out, err, runner=None, make_peer=SSHPeer,
        default_config=DEFAULT_CONFIG, environ=None):
    """
    Run one command line on ``reactor``.

    :param runner: the ``IRunner`` for zfs commands (tests pass a fake);
        ``None`` for real processes on ``reactor``.
    :param make_peer: ``callable(reactor, ssh_config, host, port)`` returning
        an ``IPeer`` (tests pass fake peers).
    :param default_config: the config used without ``--config``, if it exists.
    :param environ: the environment (default ``os.environ``), for
        ``FLOCKER_ZFS_DEBUG``.
    :return: ``Deferred`` firing with the exit status.
    """
    environ = os.environ if environ is None else environ
    debug = environ.get(DEBUG_VARIABLE, "") not in ("", "0")
    try:
        options = _parser(out).parse_args(argv)
    except _Exit as done:
        return succeed(done.status)
    except UsageError as error:
        return succeed(report.fail(error, "--json" in argv, out, err))
    except Exception as error:
        write_traceback()
        return succeed(report.unexpected(error, None, err, debug))
    options.reactor, options.err = reactor, err
    options.runner, options.make_peer = runner, make_peer
    return Deferred.fromCoroutine(_dispatch(options, out, err, default_config, debug))


def _peer_serve(argv):
    """
    The ``peer-serve`` process: the forced command's options (and
    ``--config``), then :func:`serve_main`.  :return: the exit status.
    """
    try:
        options = _parser(sys.stdout).parse_args(argv)
        _apply_config(options, DEFAULT_CONFIG)
    except _Exit as done:
        return done.status
    except FlockerZFSError as error:
        # The peer reads one JSON response from stdout, whatever happened.
        sys.stdout.buffer.write(encode_error(error))
        sys.stdout.flush()
        return report.fail(error, False, None, sys.stderr)
    # fd 0 is the ssh channel: a receive's stream goes from it to zfs.
    return serve_main(options, os.environ, 0, sys.stdout, sys.stderr)


def main(argv=None):
    """
    Console-script entry point.
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["peer-serve"]:
        sys.exit(_peer_serve(argv))

    def go(reactor):
        d = run(reactor, argv, sys.stdout, sys.stderr)
        d.addCallback(lambda status: sys.exit(status) if status else None)
        return d
    react(go)
