# test-case-name: flocker_zfs.test.test_doctor
"""
The checks of ``flocker-zfs doctor`` as values, and the pure functions that
judge what was found: command output, file modes, ``authorized_keys``
lines, a peer's ``hello``.  Each judgement is a :class:`Check` with a name,
whether it passed, what was found and, when it failed, the fix.
"""

import os
import shlex

from pyrsistent import PClass, field

from ._protocol import PROTOCOL_VERSION


class Check(PClass):
    """
    The outcome of one check.

    :ivar str name: what was checked (``"pool"``, ``"peer node-b:22"``).
    :ivar bool ok: it passed.
    :ivar str detail: what was found.
    :ivar str fix: what to do about a failure (``""`` when ok).
    """

    name = field(type=str, mandatory=True)
    ok = field(type=bool, mandatory=True)
    detail = field(type=str, initial="")
    fix = field(type=str, initial="")

    def to_json(self):
        """:return: the check as a ``dict``."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}


def passed(name, detail):
    """:return: a passing :class:`Check`."""
    return Check(name=name, ok=True, detail=detail)


def failed(name, detail, fix):
    """:return: a failing :class:`Check`."""
    return Check(name=name, ok=False, detail=detail, fix=fix)


def from_error(name, error):
    """
    :param error: a :class:`~flocker_zfs.errors.FlockerZFSError`.
    :return: a failing :class:`Check` saying what ``error`` says, with its fix.
    """
    return failed(name, error.summary(), error.fix or "")


#: Capability fields worth naming, with how a person would say them.
_FEATURES = (
    ("exact_list", "zfs list -p"), ("resume_tokens", "resumable receive"),
    ("bookmarks", "bookmarks"), ("holds", "holds"), ("send_estimate", "send size estimates"),
    ("send_compressed", "compressed send"), ("raw_send", "raw send"),
    ("receive_unmounted", "receive -u"),
)


def describe_capabilities(capabilities):
    """
    :param capabilities: the detected :class:`~flocker_zfs.model.Capabilities`.
    :return: e.g. ``"zfs-fuse; has holds, receive -u; lacks zfs list -p, ..."``.
    """
    has = [text for key, text in _FEATURES if getattr(capabilities, key)]
    lacks = [text for key, text in _FEATURES if not getattr(capabilities, key)]
    name = capabilities.implementation
    if capabilities.version:
        name += " " + capabilities.version
    parts = [name]
    if has:
        parts.append("has " + ", ".join(has))
    if lacks:
        parts.append("lacks " + ", ".join(lacks))
    return "; ".join(parts)


def judge_health(pool, health):
    """
    :param str health: the pool's ``health`` column.
    :return: the ``pool`` :class:`Check`: only ``ONLINE`` passes.
    """
    if health == "ONLINE":
        return passed("pool", "pool %s is ONLINE" % (pool,))
    return failed("pool", "pool %s is %s" % (pool, health),
                  "See `zpool status -v %s`: replace or bring back the failed device, then "
                  "`zpool clear %s`." % (pool, pool))


def judge_private_key_mode(path, mode, uid, euid):
    """
    :return: a failing ``ssh identity`` :class:`Check` if ssh would refuse
        the key file because of its mode or owner, else ``None``.
    """
    if mode & 0o077:
        return failed("ssh identity", "%s is readable by others (mode %04o); ssh refuses it"
                      % (path, mode), "chmod 600 %s" % (path,))
    if uid != euid:
        return failed("ssh identity", "%s is owned by uid %d, not by uid %d who runs ssh"
                      % (path, uid, euid), "chown %d %s" % (euid, path))
    return None


def judge_shared_file(name, path, mode):
    """
    :return: a failing :class:`Check` if others may write the file at
        ``path`` (identity, known_hosts, authorized_keys), else ``None``.
    """
    if mode & 0o022:
        return failed(name, "%s is writable by group or others (mode %04o): anyone who can "
                      "write it can change who this node trusts" % (path, mode),
                      "chmod go-w %s" % (path,))
    return None


def _option(argv, name, default):
    """The value after ``name`` in ``argv`` (``--name=value`` too), else ``default``."""
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1:]
    return default


def judge_serve_line(number, options, expected, executable=None):
    """
    Problems with one ``authorized_keys`` line whose forced command runs
    ``peer-serve``.

    :param list options: ``(name, value)`` pairs of the line.
    :param dict expected: ``{"--pool": ..., "--mount-root": ..., "--node-file": ...}``
        (this node's settings, which ``peer-serve`` must serve).
    :param executable: ``callable(path) -> bool`` (default: an executable file).
    :return: a list of problem descriptions (empty when the line is right).
    """
    executable = executable or (lambda path: os.path.isfile(path) and os.access(path, os.X_OK))
    values = dict(options)
    problems = []
    if "restrict" not in values:
        problems.append("line %d lacks the restrict option (forwarding and a terminal "
                        "stay allowed)" % (number,))
    try:
        argv = shlex.split(values.get("command") or "")
    except ValueError:
        argv = []
    program = argv[0] if argv else ""
    if not (os.path.isabs(program) and executable(program)):
        problems.append("line %d runs %s, which is not an executable file here"
                        % (number, program or "nothing"))
    for name, (wanted, default) in sorted(expected.items()):
        got = _option(argv, name, default)
        if got != wanted:
            problems.append("line %d serves %s %s, not %s" % (number, name, got, wanted))
    return problems


def is_serve_line(options):
    """:return: whether an ``authorized_keys`` line's forced command is ``peer-serve``."""
    try:
        return "peer-serve" in shlex.split(dict(options).get("command") or "")
    except ValueError:
        return False


def judge_hello(name, response, own_uuid=None, expected_uuid=None):
    """
    Judge a peer's ``hello`` answer.

    :param dict response: the decoded response.
    :param own_uuid: this node's uuid, if known.
    :param expected_uuid: the uuid the deployment file gives the peer, if any.
    :return: the peer's :class:`Check`.
    """
    protocol = response.get("protocol")
    uuid = response.get("node_uuid")
    if protocol != PROTOCOL_VERSION:
        return failed(name, "answers with protocol version %s; this node speaks %d"
                      % (protocol if protocol is not None else "(none)", PROTOCOL_VERSION),
                      "Install the same flocker-zfs version on every node.")
    if own_uuid is not None and uuid == own_uuid:
        return failed(name, "is this node itself (node uuid %s)" % (uuid,),
                      "Give the other node's address; if it really is another machine, its "
                      "node.json was copied from this one: never copy node.json (restore "
                      "that node's own, or create a new one there if it owns nothing).")
    if expected_uuid is not None and uuid != expected_uuid:
        return failed(name, "answers as node %s, but the deployment file says %s"
                      % (uuid, expected_uuid),
                      "Correct the node's address or uuid in the deployment file.")
    implementation = response.get("implementation") or "?"
    if response.get("version"):
        implementation += " " + response["version"]
    return passed(name, "node %s, pool %s, %s, protocol %d"
                  % (uuid, response.get("pool"), implementation, protocol))
