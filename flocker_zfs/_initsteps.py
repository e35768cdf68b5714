# test-case-name: flocker_zfs.test.test_init
"""
The pure parts of ``flocker-zfs init`` and ``doctor``, and their small file
helpers: sizes, peer addresses, public keys and fingerprints, ``known_hosts``
and ``authorized_keys`` lines, and the state file where ``init`` records what
it created (so it reuses its own pool and key and refuses anyone else's).

Nothing here runs a process; :func:`run_tool` runs ``ssh-keygen`` and
``ssh-keyscan`` through an injected ``IRunner`` (a
:class:`~flocker_zfs._runner.ProcessRunner` on the reactor in production).
"""

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import os
import re
import shlex

from pyrsistent import PClass, field

from ._config import ZFSSettings
from ._files import MAX_KEYS_FILE_BYTES, read_bounded
from ._sizes import InvalidSize, format_size, parse_size
from ._ssh import validate_host
from .errors import ConfigError, FlockerZFSError, InvalidName, ZFSError, ZFSNotInstalled

#: Where peers' keys are authorized to run ``peer-serve``.
DEFAULT_AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"

#: The file, in the config directory, where init records what it created.
STATE_FILE = "init-state.json"
STATE_VERSION = 1

#: Smallest pool file or device zpool accepts (SPA_MINDEVSIZE).
MINIMUM_POOL_SIZE = 64 * 1024 * 1024

#: Host key types asked of ssh-keyscan, best first; init records the best one
#: a peer offers.
SCAN_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
              "ecdsa-sha2-nistp521", "ssh-rsa")

#: ``ssh-keyscan -t`` names for the same types.
SCAN_ARGUMENT = "ed25519,ecdsa,rsa"

#: Public key types accepted in a key file or ``--peer-key``.
KEY_TYPES = frozenset([
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
])


class InitRefused(ConfigError):
    """
    init would have to change something it did not create; nothing was changed.
    """


class ToolFailed(FlockerZFSError):
    """
    ``ssh-keygen`` or ``ssh-keyscan`` exited non-zero (or is missing: see
    :class:`ToolMissing`).

    :ivar tuple argv: the command.
    """

    def __init__(self, argv, detail):
        FlockerZFSError.__init__(self, "%s %s" % (argv[0], detail))
        self.argv = tuple(argv)

    @property
    def fix(self):
        return "See the message; `%s` shows the whole output." % (shlex.join(self.argv),)


class ToolMissing(ToolFailed):
    """
    ``ssh-keygen`` or ``ssh-keyscan`` is not installed.
    """

    fix = "Install openssh-client (`apt-get install openssh-client`)."


class ToolsMissing(ToolMissing):
    """
    Programs a command needs are not installed (found before it changed
    anything).
    """

    def __init__(self, what, names):
        FlockerZFSError.__init__(self, "%s needs %s, which %s not installed" % (
            what, " and ".join(names), "is" if len(names) == 1 else "are"))
        self.argv = tuple(names)


async def require_tools(tools, names, what):
    """
    Check that each OpenSSH program in ``names`` can be run, by running it
    with ``-?`` (which only prints its usage).

    :param str what: who needs them, for the message (``"init"``).
    :raises ToolsMissing: naming every one that is missing.
    """
    missing = []
    for name in names:
        try:
            await run_tool(tools, [name, "-?"], timeout=10.0)
        except ToolMissing:
            missing.append(name)
        except ToolFailed:
            pass        # it ran: the usage exits non-zero
    if missing:
        raise ToolsMissing(what, missing)


class NoHostKey(FlockerZFSError):
    """
    ``ssh-keyscan`` got no host key from a peer.
    """

    fix = ("Check the address and port, and that the peer's sshd runs and the firewall "
           "lets you reach it.")


class HostKeyChanged(FlockerZFSError):
    """
    A peer offers none of the host keys recorded for it: it was reinstalled,
    or someone is in between.
    """

    fix = ("Check the peer's key out of band (`ssh-keygen -lf "
           "/etc/ssh/ssh_host_ed25519_key.pub` on the peer's console). If it was "
           "reinstalled, remove the old line (`ssh-keygen -R HOST -f KNOWN_HOSTS`) and run "
           "init again; otherwise treat this as an attack.")


# -- options -------------------------------------------------------------------

def setting(options, name):
    """
    :return: option ``name`` of ``options``, or, when it was left out
        (``None``), the built-in default of the :class:`ZFSSettings` field of
        that name.  (The dispatcher has already filled in the config's value,
        when there is a config.)
    """
    value = getattr(options, name, None)
    return getattr(ZFSSettings(), name) if value is None else value


# -- sizes and addresses -------------------------------------------------------

def parse_pool_size(text):
    """
    ``--pool-size``: the size of a new pool file, e.g. ``10G`` or ``512M``
    (:func:`~flocker_zfs._sizes.parse_size`).

    :return: bytes, at least :data:`MINIMUM_POOL_SIZE`.
    :raises ConfigError: not such a size.
    """
    try:
        return parse_size(text, minimum=MINIMUM_POOL_SIZE)
    except InvalidSize as error:
        raise ConfigError("--pool-size: %s" % (error.summary(),),
                          fix="Give the size of the pool file with K, M, G or T, at least "
                              "%s (ZFS refuses smaller pools), e.g. --pool-size 10G, the "
                              "default." % (format_size(MINIMUM_POOL_SIZE),))


def host_token(host, port):
    """
    The name ssh looks up in known_hosts: ``host`` on port 22, else
    ``[host]:port``.
    """
    return host if port == 22 else "[%s]:%d" % (host, port)


def validate_peer_from(text):
    """
    ``--peer-from``: comma-separated addresses, CIDR ranges or host names for
    the ``from="..."`` option.

    :return: the list of items.
    :raises InvalidName: an item that is none of these.
    """
    items = [item.strip() for item in text.split(",")]
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            try:
                validate_host(item)
            except InvalidName:
                raise InvalidName(
                    "invalid --peer-from item %r: use addresses, CIDR ranges (10.0.0.0/24) or "
                    "host names, separated by commas" % (item,),
                    fix="For example --peer-from 10.0.0.11,10.0.0.12.")
    return items


# -- public keys ---------------------------------------------------------------

class PublicKey(PClass):
    """
    An OpenSSH public key.

    :ivar str key_type: e.g. ``ssh-ed25519``.
    :ivar str data: the base64 key blob.
    :ivar str comment: free text after the key (may be empty).
    """

    key_type = field(type=str, mandatory=True)
    data = field(type=str, mandatory=True)
    comment = field(type=str, initial="")

    def text(self):
        """:return: ``"<type> <base64>"``, without the comment."""
        return "%s %s" % (self.key_type, self.data)

    def line(self):
        """:return: the key with its comment, as in a ``.pub`` file."""
        return ("%s %s" % (self.text(), self.comment)).strip()

    def fingerprint(self):
        """
        :return: ``SHA256:<base64>``, what ``ssh-keygen -lf`` prints for it.
        """
        digest = hashlib.sha256(base64.b64decode(self.data)).digest()
        return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


_COMMENT_SAFE = re.compile(r"[^\x21-\x7e ]")


def make_public_key(key_type, data, comment=""):
    """
    :return: a :class:`PublicKey`, checked: a known type, and a base64 blob
        that starts with that type's name, as every OpenSSH key blob does.
    :raises ConfigError: otherwise.
    """
    if key_type not in KEY_TYPES:
        raise ConfigError("unknown SSH key type %r" % (key_type[:40],),
                          fix="Use an OpenSSH public key such as `ssh-ed25519 AAAA...`.")
    try:
        blob = base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ConfigError("SSH key data is not base64: %r" % (data[:40],),
                          fix="Copy the whole line of the .pub file.")
    name = blob[4:4 + int.from_bytes(blob[:4], "big")] if len(blob) > 4 else b""
    if name != key_type.encode("ascii"):
        raise ConfigError("SSH key data does not hold a %s key" % (key_type,),
                          fix="Copy the whole line of the .pub file, unchanged.")
    return PublicKey(key_type=key_type, data=data,
                     comment=_COMMENT_SAFE.sub("", comment).strip())


def parse_public_key(text):
    """
    Parse one public key line (``TYPE BASE64 [COMMENT]``).

    :raises ConfigError: not a public key.
    """
    fields = text.strip().split(None, 2)
    if len(fields) < 2 or "\n" in text.strip():
        raise ConfigError("not an SSH public key: %r" % (text.strip()[:60],),
                          fix="Give one line of a .pub file: `ssh-ed25519 AAAA... comment`.")
    return make_public_key(fields[0], fields[1], fields[2] if len(fields) > 2 else "")


def read_public_key(path):
    """
    :return: the :class:`PublicKey` in the file at ``path``.
    :raises ConfigError: unreadable, or not one public key.
    """
    fix = "Give the path of a .pub file, or the key line itself."
    data = read_bounded(path, MAX_KEYS_FILE_BYTES, "public key file", fix, missing_fix=fix)
    try:
        return parse_public_key(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("public key file %s is not UTF-8 text" % (path,), fix=fix)


def read_keys_file(path, what, fix):
    """
    :return: the text of a ``known_hosts`` or ``authorized_keys`` file
        (undecodable bytes replaced), or ``""`` if it does not exist.
    :raises ConfigError: it is not a regular file, is larger than
        :data:`~flocker_zfs._files.MAX_KEYS_FILE_BYTES`, or cannot be read.
    """
    try:
        data = read_bounded(path, MAX_KEYS_FILE_BYTES, what, fix)
    except FileNotFoundError:
        return ""
    return data.decode("utf-8", "replace")


def load_peer_key(value):
    """
    ``--peer-key``: a ``.pub`` file's path, or the key text itself.
    """
    if value.startswith("/"):
        return read_public_key(value)
    return parse_public_key(value)


def os_reason(error):
    """
    :return: why ``error`` (an ``OSError``, or a ``ValueError`` reading a
        file) happened, without the path: ``"Permission denied"``.
    """
    return os.strerror(error.errno) if getattr(error, "errno", None) else str(error)


# -- known_hosts -----------------------------------------------------------------

class KnownHost(PClass):
    """
    One ``known_hosts`` line.

    :ivar int line: its line number (1-based).
    :ivar str marker: ``""``, ``"@revoked"`` or ``"@cert-authority"``.
    :ivar str patterns: the host patterns field (comma-separated, maybe hashed).
    :ivar key: its :class:`PublicKey`.
    """

    line = field(type=int, mandatory=True)
    marker = field(type=str, initial="")
    patterns = field(type=str, mandatory=True)
    key = field(type=PublicKey, mandatory=True)


def parse_known_hosts(text):
    """
    :return: ``(entries, bad)``: the :class:`KnownHost` lines, and the numbers
        of lines that are not comments and could not be read (ssh ignores them).
    """
    entries, bad = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        marker = ""
        if fields[0].startswith("@"):
            marker, fields = fields[0], fields[1:]
        try:
            key = make_public_key(fields[1], fields[2], " ".join(fields[3:]))
        except (ConfigError, IndexError):
            bad.append(number)
            continue
        entries.append(KnownHost(line=number, marker=marker, patterns=fields[0], key=key))
    return entries, bad


def _pattern_matches(pattern, token):
    if pattern.startswith("|1|"):
        try:
            _, _, salt, digest = pattern.split("|")
            mac = hmac.new(base64.b64decode(salt), token.encode("utf-8"), hashlib.sha1)
            return hmac.compare_digest(mac.digest(), base64.b64decode(digest))
        except (ValueError, binascii.Error):
            return False
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, token, re.IGNORECASE) is not None


def host_matches(patterns, token):
    """
    Whether a known_hosts patterns field applies to ``token`` as ssh decides
    it: some pattern matches and no negated (``!``) one does.
    """
    matched = False
    for pattern in patterns.split(","):
        if pattern.startswith("!"):
            if _pattern_matches(pattern[1:], token):
                return False
        elif _pattern_matches(pattern, token):
            matched = True
    return matched


def recorded_keys(entries, token):
    """
    :return: ``(keys, revoked)``: the plain host keys recorded for ``token``
        and the revoked ones (lists of :class:`PublicKey`).
    """
    keys, revoked = [], []
    for entry in entries:
        if host_matches(entry.patterns, token):
            if entry.marker == "":
                keys.append(entry.key)
            elif entry.marker == "@revoked":
                revoked.append(entry.key)
    return keys, revoked


def parse_keyscan(stdout):
    """
    :param bytes stdout: ``ssh-keyscan`` output.
    :return: the offered keys, best type first (:data:`SCAN_TYPES` order).
    """
    keys = []
    for raw in stdout.decode("utf-8", "replace").splitlines():
        fields = raw.split()
        if len(fields) < 3 or raw.startswith("#"):
            continue
        try:
            keys.append(make_public_key(fields[1], fields[2]))
        except ConfigError:
            continue
    order = {name: index for index, name in enumerate(SCAN_TYPES)}
    return sorted(keys, key=lambda key: order.get(key.key_type, len(order)))


class HostKeyDecision(PClass):
    """
    What to do for one ``--peer``.

    :ivar str token: the known_hosts name (``host`` or ``[host]:port``).
    :ivar key: the key that is (or will be) recorded.
    :ivar bool record: ``True`` to append it, ``False`` if already there.
    """

    token = field(type=str, mandatory=True)
    key = field(type=PublicKey, mandatory=True)
    record = field(type=bool, mandatory=True)


def decide_host_key(token, path, entries, offered):
    """
    Compare what a peer offers with what known_hosts holds for it.

    A host already recorded must offer one of its recorded keys, and no
    recorded key of the same type may differ; new key types are not added
    for it (that would let whoever answers now add a key of their own).  A new
    host gets the best offered key.

    :param list offered: keys from :func:`parse_keyscan` (not empty).
    :return: a :class:`HostKeyDecision`.
    :raises HostKeyChanged: the peer offers a different key than recorded.
    :raises InitRefused: the offered key is revoked in known_hosts.
    """
    keys, revoked = recorded_keys(entries, token)
    offered_text = {key.text() for key in offered}
    bad = [key for key in revoked if key.text() in offered_text]
    if bad:
        raise InitRefused("%s offers host key %s, which %s marks @revoked"
                          % (token, bad[0].fingerprint(), path),
                          fix="Find out why the peer still uses a revoked key.")
    if not keys:
        return HostKeyDecision(token=token, key=offered[0], record=True)
    recorded = {key.text(): key for key in keys}
    same = [key for key in offered if key.text() in recorded]
    types = {key.key_type for key in keys}
    changed = [key for key in offered
               if key.key_type in types and key.text() not in recorded]
    if changed or not same:
        new = (changed or offered)[0]
        old = [key for key in keys if key.key_type == new.key_type] or keys
        raise HostKeyChanged(
            "%s now offers host key %s %s, but %s records %s %s for it: the peer was "
            "reinstalled or someone is in between; nothing was changed"
            % (token, new.key_type, new.fingerprint(), path, old[0].key_type,
               old[0].fingerprint()))
    return HostKeyDecision(token=token, key=same[0], record=False)


def known_hosts_line(decision):
    """:return: the line appended for a new host key."""
    return "%s %s\n" % (decision.token, decision.key.text())


# -- authorized_keys ---------------------------------------------------------------

def serve_argv(program, pool, mount_root, node_file):
    """
    :return: the forced command's argv: ``peer-serve`` with this node's pool,
        mount root and identity.
    """
    return [program, "peer-serve", "--pool", pool, "--mount-root", mount_root,
            "--node-file", node_file]


def authorized_keys_line(command_argv, key, peer_from=()):
    """
    The restricted ``authorized_keys`` line for ``key``.

    The command is joined with :func:`shlex.join` (root's shell runs it with
    ``-c``) and then quoted for sshd, whose only escape inside ``"..."`` is
    ``\\"``.

    :raises InvalidName: an argument with a control character (a line break
        would end the line).
    """
    for arg in command_argv:
        if any(ord(c) < 32 or ord(c) == 127 for c in arg):
            raise InvalidName("cannot put %r in an authorized_keys command: it contains "
                              "control characters" % (arg,))
    command = shlex.join(command_argv).replace('"', '\\"')
    options = ["restrict"]
    if peer_from:
        options.append('from="%s"' % (",".join(peer_from),))
    options.append('command="%s"' % (command,))
    return "%s %s" % (",".join(options), key.line())


def split_authorized_line(line):
    """
    Split an ``authorized_keys`` line into its options and key.

    :return: ``(options, key)``: a list of ``(name, value or None)`` with the
        values unquoted as sshd does, and the :class:`PublicKey`; ``None`` for
        a comment, blank or unreadable line.
    """
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    options_text = ""
    first = text.split(None, 1)[0]
    if first not in KEY_TYPES:
        quoted, end = False, len(text)
        for index, char in enumerate(text):
            if char == '"' and (index == 0 or text[index - 1] != "\\" or not quoted):
                quoted = not quoted
            elif char in " \t" and not quoted:
                end = index
                break
        options_text, text = text[:end], text[end:].strip()
    try:
        key = parse_public_key(text)
    except ConfigError:
        return None
    return _parse_options(options_text), key


def _parse_options(text):
    options, index = [], 0
    while index < len(text):
        match = re.match(r'([A-Za-z0-9-]+)(?:="((?:[^"\\]|\\.)*)")?,?', text[index:])
        if match is None or not match.group(0):
            break
        value = match.group(2)
        if value is not None:
            value = value.replace('\\"', '"')
        options.append((match.group(1).lower(), value))
        index += len(match.group(0))
    return options


# -- the state file ------------------------------------------------------------------

def empty_state():
    """:return: a state recording nothing."""
    return {"version": STATE_VERSION, "pools": {}, "ssh_keys": {}}


def load_state(path):
    """
    :return: the recorded state (``dict``), empty if the file is missing.
    :raises ConfigError: unreadable or malformed.
    """
    try:
        state = json.loads(read_bounded(
            path, MAX_KEYS_FILE_BYTES, "init's state file",
            fix="Move it away: init writes it as a small JSON file; without it init treats "
                "every existing pool and key as not its own.").decode("utf-8"))
    except FileNotFoundError:
        return empty_state()
    except ConfigError:
        raise       # a ValueError too: refused by read_bounded, with its fix
    except ValueError as error:
        raise ConfigError("cannot read init's state file %s: %s" % (path, os_reason(error)),
                          fix="Restore it from backup, or move it away; without it init "
                              "treats every existing pool and key as not its own.")
    if (not isinstance(state, dict) or not isinstance(state.get("pools"), dict)
            or not isinstance(state.get("ssh_keys"), dict)):
        raise ConfigError("init's state file %s is not in the expected form" % (path,),
                          fix="Restore it from backup, or move it away.")
    return state


def save_state(path, state):
    """
    Write ``state`` to ``path`` (mode 0600) atomically, unless it already
    holds exactly that.
    """
    text = json.dumps(state, indent=2, sort_keys=True) + "\n"
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return
    except OSError:
        pass
    temporary = "%s.tmp-%d" % (path, os.getpid())
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, 0o600)
    os.rename(temporary, path)


# -- private keys ----------------------------------------------------------------

_PRIVATE_HEADER = re.compile(br"\A\s*-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_PASSPHRASE_FIX = ("Use a key without a passphrase: `flocker-zfs init --ssh-identity NEW_PATH` "
                   "makes one (or remove it: `ssh-keygen -p -f %s`).")


def read_key_head(path, size=4096):
    """:return: the first ``size`` bytes of the file at ``path`` (``b""`` if unreadable)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return b""


def key_refusal(path, head, error):
    """
    Why ``ssh-keygen -y -P ''`` could not read the private key at ``path``,
    judged from what it said and from the file's first bytes: it needs a
    passphrase (which no one is there to type), it is a public key, it is no
    key at all, or something else that ssh-keygen said.

    :param bytes head: the start of the file (:func:`read_key_head`).
    :param ToolFailed error: ssh-keygen's failure.
    :return: ``(cause, fix)``; the cause starts with ``path``.
    """
    if (b"ENCRYPTED" in head.split(b"\n\n", 1)[0]
            or "incorrect passphrase" in error.summary()):
        return ("%s needs a passphrase, which nobody is there to type" % (path,),
                _PASSPHRASE_FIX % (path,))
    if not _PRIVATE_HEADER.match(head):
        make = "`flocker-zfs init --ssh-identity NEW_PATH` makes a new key."
        try:
            parse_public_key(head.decode("utf-8", "replace").strip().splitlines()[0])
        except (ConfigError, IndexError):
            return ("%s is not an SSH private key" % (path,),
                    "Give the path of a private key (it starts with -----BEGIN ... PRIVATE "
                    "KEY-----); " + make)
        return ("%s is a public key, not a private key" % (path,),
                "Give the private key (the file without .pub); " + make)
    return ("ssh-keygen cannot read the private key %s: %s" % (path, error.summary()),
            error.fix)


# -- running ssh-keygen and ssh-keyscan ---------------------------------------------------

async def run_tool(tools, argv, timeout=60.0):
    """
    Run an OpenSSH tool through the ``IRunner`` ``tools``.

    :return: its stdout (``bytes``).
    :raises ToolMissing: not installed.
    :raises ToolFailed: it exited non-zero (quoting its stderr).
    """
    try:
        return await tools.run(argv, timeout=timeout)
    except ZFSNotInstalled:
        raise ToolMissing(argv, "is not installed")
    except ZFSError as error:
        said = error.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ToolFailed(argv, "failed (exit status %s)%s"
                         % (error.status, (": " + said[-1]) if said else ""))
