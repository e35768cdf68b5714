# test-case-name: flocker_zfs.test.test_ssh
"""
The ``ssh`` command line that reaches a peer's ``peer-serve``, as pure data.

Nothing here runs a process.  :class:`SSHConfig` holds the client settings
(validated when built), :func:`validate_host` the peer address rules,
:func:`parse_peer` reads a peer as written on a command line, and
:func:`ssh_argv` builds the argv with every option pinned: no user or system
``ssh_config`` is read (``-F /dev/null``), host keys are checked strictly
against one file, nothing is forwarded, and the destination comes right after
``--`` so it can never be read as an option (scenario 11 of the reliability
notes; CVE-2023-51385).

ssh joins the remote argv with spaces and the server runs it through the
login shell (``ssh.1``; ``session.c``), so the remote argv is joined here with
:func:`shlex.join`: a POSIX shell (or :func:`shlex.split`, which is what
``peer-serve`` does with ``SSH_ORIGINAL_COMMAND``) gets the same list back.
"""

import ipaddress
import os
import re
import shlex

from pyrsistent import PClass, field

from .errors import ConfigError, InvalidName
from .names import describe_controls, shown

#: Ciphers that may be asked for explicitly: modern AEAD and CTR modes that
#: every supported OpenSSH offers.  ``None`` in the config leaves ssh's own
#: preference order (chacha20-poly1305 first, then the AES-GCM modes).
CIPHERS = frozenset([
    "chacha20-poly1305@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
])

#: Seconds an idle multiplexing master connection stays up after its last use.
CONTROL_PERSIST = 60

#: sun_path is 108 bytes; ControlPath is ``<dir>/%C`` (40 hex characters) and
#: ssh adds a 17-character temporary suffix while it binds the socket.
MAX_CONTROL_DIR = 108 - 1 - 1 - 40 - 17

_USER = re.compile(r"\A[a-z_][a-z0-9_-]*\Z")
_LABEL = re.compile(r"\A[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_MAX_HOSTNAME = 253

#: Characters ssh or its config parser would treat specially inside a path
#: given as ``-o Key=<path>``: whitespace separates list items
#: (UserKnownHostsFile takes several files), quotes and backslashes are
#: unquoted, ``%`` starts a token (``%h``, ``%d``) and ``~`` is expanded.
_PATH_SPECIAL = frozenset(" \t\"'\\%~,=#")

#: How a message names them: a space or tab is invisible when quoted.
_SPECIAL_NAMES = {" ": "a space", "\t": "a tab", '"': 'a double quote (")',
                  "'": "a single quote (')", "\\": "a backslash (\\)",
                  "%": "a percent sign (%)", "~": "a tilde (~)", ",": "a comma (,)",
                  "=": "an equals sign (=)", "#": "a hash (#)"}


def validate_host(value):
    """
    Check a peer address before it reaches the ssh command line.

    Accepted: an IPv4 or IPv6 literal (as :mod:`ipaddress` parses it, without
    brackets, port or zone), or an RFC 1123 host name: dot-separated labels of
    ``[A-Za-z0-9-]`` that neither start nor end with ``-``, at most 63
    characters each and 253 in all, the last label not all digits.

    :param str value: the address from configuration or discovery.
    :return: ``value``, unchanged.
    :raises InvalidName: anything else (quoting the value).
    """
    if not isinstance(value, str) or not value:
        raise InvalidName("invalid peer address %s: must be a host name or an IP address"
                          % (shown(value),), fix="Use a host name or an IP address.")
    if "%" not in value:      # a zone index ("fe80::1%eth0") is free text
        try:
            ipaddress.ip_address(value)
        except ValueError:
            pass
        else:
            return value
    too_long = len(value) > _MAX_HOSTNAME
    labels = value.split(".")
    if (too_long or not all(_LABEL.match(label) for label in labels)
            or labels[-1].isdigit()):
        raise InvalidName(
            "invalid peer address %s: not an IP address nor a host name (letters, digits "
            "and '-' in dot-separated labels, not starting or ending with '-', at most "
            "253 characters)" % (shown(value),),
            fix="Use the peer's plain host name or IP address, without user, port or "
                "brackets; set the port with ssh_port.")
    return value


def canonical_host(value):
    """
    The form of an address that two spellings of one host share, for
    telling whether two addresses are the same: an IP literal as
    :mod:`ipaddress` writes it (``0:0::1`` is ``::1``; an IPv4-mapped IPv6
    address is its IPv4 address), a host name in lower case (DNS names are
    case-insensitive).

    :param str value: an address :func:`validate_host` accepts.
    :return: the canonical text.
    """
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return value.lower()
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped if mapped is not None else address)


def validate_port(value):
    """
    :return: ``value`` if it is an ``int`` TCP port (1 to 65535).
    :raises ConfigError: otherwise.
    """
    if type(value) is not int or not 1 <= value <= 65535:
        raise ConfigError("invalid ssh port %s: must be a whole number from 1 to 65535"
                          % (shown(value),), fix="Use the peer's sshd port, normally 22.")
    return value


_PEER_FIX = ("Write the peer as HOST, HOST:PORT or [IPV6]:PORT, e.g. node-b, node-b:2222 "
             "or [fd00::2]:2222.")


def parse_peer(text, default_port=22):
    """
    Read a peer as given on a command line: ``HOST``, ``HOST:PORT`` or
    ``[IPV6]:PORT`` (a bare IPv6 address, which has colons of its own,
    takes ``default_port``).

    :param str text: the peer.
    :param int default_port: the port when ``text`` names none.
    :return: ``(host, port)``, checked with :func:`validate_host` and
        :func:`validate_port`.
    :raises InvalidName: a bad host or port (quoting ``text``).
    """
    if not isinstance(text, str):
        raise InvalidName("invalid peer %s" % (shown(text),), fix=_PEER_FIX)
    host, port = text, None
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise InvalidName("invalid peer %s: use HOST, HOST:PORT or [IPV6]:PORT"
                              % (shown(text),), fix=_PEER_FIX)
        host, port = inside, (rest[1:] if rest else None)
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        validate_host(host)
    except InvalidName as error:
        raise InvalidName(error.summary(), fix=_PEER_FIX)
    if port is None:
        return host, validate_port(default_port)
    if not re.match(r"\A[0-9]{1,5}\Z", port) or not 1 <= int(port) <= 65535:
        raise InvalidName("invalid peer port in %s: must be a number from 1 to 65535"
                          % (shown(text),), fix=_PEER_FIX)
    return host, int(port)


def validate_user(value):
    """
    :return: ``value`` if it is a plain Unix user name (``^[a-z_][a-z0-9_-]*$``).
    :raises InvalidName: otherwise.
    """
    if not isinstance(value, str) or not _USER.match(value) or len(value) > 32:
        raise InvalidName("invalid ssh user %s: use a Unix user name such as root"
                          % (shown(value),), fix="Use root, or a user name of lowercase "
                                                 "letters, digits, '_' and '-'.")
    return value


def validate_path(what, value):
    """
    Check a path that is given to ssh.

    :param str what: the setting's name, for the message.
    :param str value: the path.
    :return: ``value`` if it is absolute and normalised, without ``.`` or
        ``..`` components, control characters or characters ssh would expand
        or split on (whitespace, quotes, backslash, ``%``, ``~``, ``,``,
        ``=``, ``#``).
    :raises InvalidName: otherwise.
    """
    fix = "Use an absolute path such as /etc/flocker/id_rsa_flocker."
    if not isinstance(value, str) or not value.startswith("/"):
        raise InvalidName("invalid %s %s: must be an absolute path" % (what, shown(value)),
                          fix=fix)
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidName("invalid %s %s: contains control characters (%s)"
                          % (what, shown(value), describe_controls(value)), fix=fix)
    special = [c for c in dict.fromkeys(value) if c in _PATH_SPECIAL]
    if special:
        raise InvalidName(
            "invalid %s %s: ssh would misread %s in it"
            % (what, shown(value), ", ".join(_SPECIAL_NAMES[c] for c in special)),
            fix="Use an absolute path without spaces, quotes, backslashes or any of "
                "% ~ , = #, such as /etc/flocker/id_rsa_flocker.")
    parts = value.split("/")
    if ".." in parts or "." in parts or os.path.normpath(value) != value:
        raise InvalidName("invalid %s %s: not a normalised path (expected %r)"
                          % (what, shown(value), os.path.normpath(value)), fix=fix)
    return value


def validate_ciphers(value):
    """
    :return: ``value`` if it is ``None`` or a comma-separated list of
        :data:`CIPHERS`.
    :raises ConfigError: otherwise.
    """
    if value is None:
        return value
    if not isinstance(value, str) or not value or not set(value.split(",")) <= CIPHERS:
        raise ConfigError("invalid ssh ciphers %s: choose from %s"
                          % (shown(value), ", ".join(sorted(CIPHERS))),
                          fix="Leave ciphers unset for ssh's default, or name one of them.")
    return value


def _positive(what):
    def check(value):
        if type(value) is not int or not 1 <= value <= 3600:
            raise ConfigError("invalid %s %s: must be a whole number of seconds from 1 "
                              "to 3600" % (what, shown(value)))
        return value
    return check


def _path(what, optional=False):
    def check(value):
        if optional and value is None:
            return value
        return validate_path(what, value)
    return check


def _control_dir(value):
    if value is not None:
        validate_path("control_dir", value)
        if len(value.encode("utf-8")) > MAX_CONTROL_DIR:
            raise InvalidName("invalid control_dir %s: longer than %d bytes, too long for "
                              "the ssh control socket path" % (shown(value), MAX_CONTROL_DIR))
    return value


class SSHConfig(PClass):
    """
    How this node connects to its peers.  Every field is validated when the
    record is built or changed, raising :class:`~flocker_zfs.errors.ConfigError`
    (or its subclass ``InvalidName``).

    :ivar str identity: private key file (mode 0600, no passphrase).
    :ivar str known_hosts: the only file host keys are checked against.
    :ivar int port: the peers' sshd port.
    :ivar str user: the remote user (``root``, or one with ``zfs allow``).
    :ivar int connect_timeout: seconds for the TCP connection and the SSH
        handshake.
    :ivar int server_alive_interval: seconds of silence before a keep-alive.
    :ivar int server_alive_count: keep-alives unanswered before giving up; a
        stalled connection is dropped after about interval x count seconds.
    :ivar ciphers: ``None`` for ssh's default, or a comma-separated list of
        :data:`CIPHERS` (``aes128-gcm@openssh.com`` is fastest with AES-NI).
    :ivar control_dir: a private (0700) directory for multiplexing sockets,
        or ``None`` for one connection per request.
    """

    identity = field(type=str, mandatory=True, factory=_path("ssh identity"))
    known_hosts = field(type=str, mandatory=True, factory=_path("ssh known_hosts"))
    port = field(type=int, initial=22, factory=validate_port)
    user = field(type=str, initial="root", factory=validate_user)
    connect_timeout = field(type=int, initial=10, factory=_positive("connect_timeout"))
    server_alive_interval = field(type=int, initial=10,
                                  factory=_positive("server_alive_interval"))
    server_alive_count = field(type=int, initial=3, factory=_positive("server_alive_count"))
    ciphers = field(type=(str, type(None)), initial=None, factory=validate_ciphers)
    control_dir = field(type=(str, type(None)), initial=None, factory=_control_dir)


def ssh_options(config):
    """
    The ``-o`` options (and their reasons) that pin ssh's behaviour.

    :param SSHConfig config: the client settings.
    :return: a ``list`` of ``"Key=value"`` strings.
    """
    options = [
        # Only our replication key, never other keys found in ~/.ssh or the
        # agent: a peer must not learn of the admin's keys.
        "IdentitiesOnly=yes",
        # Never prompt (passphrase, password, unknown host): fail instead, so
        # nothing waits on a terminal that is not there.
        "BatchMode=yes",
        # Refuse unknown and changed host keys; never "no" or "accept-new",
        # which would let a changed or spoofed peer in.
        "StrictHostKeyChecking=yes",
        # Host keys come from our pinned file only...
        "UserKnownHostsFile=%s" % (config.known_hosts,),
        # ...and not from the system-wide one.
        "GlobalKnownHostsFile=/dev/null",
        # Bounds the TCP connect and the handshake: an unreachable peer fails
        # in seconds, not minutes (scenario 29).
        "ConnectTimeout=%d" % (config.connect_timeout,),
        # Detect a stalled connection (scenario 34) within interval x count.
        "ServerAliveInterval=%d" % (config.server_alive_interval,),
        "ServerAliveCountMax=%d" % (config.server_alive_count,),
        # The peer gets no access to our agent, display or ports.
        "ForwardAgent=no",
        "ForwardX11=no",
        "ClearAllForwardings=yes",
        # No local command runs on connection.
        "PermitLocalCommand=no",
        # Never rewrite known_hosts: it changes only through an operator.
        "UpdateHostKeys=no",
        # ssh's default level, never -q (which hides the host-key-changed
        # warning) nor ERROR (which hides "Timeout, server not responding",
        # logged at INFO): stderr is parsed into typed errors.
        "LogLevel=INFO",
    ]
    if config.control_dir is None:
        # One connection per request: no socket anyone else could reuse.
        options.append("ControlMaster=no")
    else:
        options.extend([
            # Reuse one authenticated connection for the many small requests
            # of a handoff; the socket lives in our private directory, never
            # in a world-writable /tmp.
            "ControlMaster=auto",
            "ControlPath=%s/%%C" % (config.control_dir,),
            "ControlPersist=%d" % (CONTROL_PERSIST,),
        ])
    return options


def ssh_argv(config, host, remote_argv, port=None):
    """
    Build the ``ssh`` argv that runs ``remote_argv`` on ``host``.

    :param SSHConfig config: the client settings.
    :param str host: the peer address (checked with :func:`validate_host`).
    :param remote_argv: the remote command, every element already validated
        by its builder; joined with :func:`shlex.join` into the one string ssh
        sends.
    :param port: overrides ``config.port`` when not ``None``.
    :return: the argv ``list``, starting with ``"ssh"``.
    :raises InvalidName: a bad host, port or empty remote argv.
    """
    validate_host(host)
    port = config.port if port is None else validate_port(port)
    remote_argv = [str(arg) for arg in remote_argv]
    if not remote_argv:
        raise InvalidName("no remote command to run on %s" % (host,))
    argv = [
        "ssh",
        # Read no ssh_config at all: a ProxyCommand or Match exec there could
        # combine with the host name, and the options below are complete.
        "-F", "/dev/null",
        "-i", config.identity,
    ]
    for option in ssh_options(config):
        argv.extend(["-o", option])
    if config.ciphers is not None:
        argv.extend(["-c", config.ciphers])
    argv.extend([
        "-p", str(port),
        "-l", config.user,
        # Ends the options: the destination is never parsed as one (a host
        # such as "-oProxyCommand=..." is already refused above; this is the
        # second guard).
        "--",
        host,
        shlex.join(remote_argv),
    ])
    return argv
