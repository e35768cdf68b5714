# test-case-name: flocker_zfs.test.test_protocol
"""
The peer protocol: what one node asks another over SSH, as pure data.

A request is an argv ``["flocker-zfs", "peer", VERB, ARG...]``.  The client
joins it with ``shlex.join`` into the one string ssh sends; the server (the
``peer-serve`` forced command) gets that string in ``SSH_ORIGINAL_COMMAND``
and parses it with :func:`parse_request` -- never through a shell.  Every
argument is validated on both sides: dataset ids are UUIDs, GUIDs are
decimal, snapshot names pass :func:`~flocker_zfs.names.validate_snapshot_name`.

A response is one JSON object on stdout: ``{"ok": true, ...}`` with exit
status 0, or ``{"ok": false, "error": NAME, "message": ..., "fix": ...}``
with exit status 1.  ``receive`` also reads the ``zfs send`` stream from
stdin.

Verbs (exact argument counts):

``hello``
    the server's node uuid, pool, protocol version, capabilities and the
    verbs it answers.
``state DATASET``
    what the server has of one dataset (:func:`dataset_state`).
``receive DATASET BASE SNAPSHOT GUID OWNER GENERATION [MAXSIZE]``
    receive a stream of ``SNAPSHOT`` (whose guid is ``GUID``) into the
    server's read-only replica of ``DATASET``, owned by node ``OWNER`` at
    ``GENERATION``.  ``BASE`` is ``full``, ``resume`` or the decimal guid of
    the incremental base, which must be the replica's newest snapshot.
    ``MAXSIZE`` (bytes, or ``none``) is the owner's maximum size, recorded
    on the replica (which itself carries no quota, so a receive never fails
    on it) and applied when it is acquired.
``acquire DATASET GENERATION GUID FROM``
    make the server the owner at ``GENERATION`` if its newest snapshot is
    ``GUID`` and the generation is newer than any it has seen; ``FROM`` is
    the node handing off.  Idempotent.
``abort-receive DATASET``
    discard an interrupted resumable receive whose token cannot be used.
``datasets``
    the state of every dataset the server manages, in one reply (what the
    reference agent asks each other node on each iteration):
    ``{"node_state": ...}`` in the deployer's node state format.

:data:`PROTOCOL_VERSION` changes only when an existing verb changes
incompatibly.  A new verb is a compatible addition: ``hello`` lists the
verbs a server answers, and a server that predates a verb answers it with
the ``ProtocolError`` of an unknown request (see :func:`is_unknown_verb`).
"""

import json
import re
import shlex

from .errors import FlockerZFSError, InvalidName
from .names import validate_dataset_id, validate_snapshot_name

#: Bumped when a verb changes incompatibly; ``hello`` reports it.
PROTOCOL_VERSION = 1

PROGRAM = ("flocker-zfs", "peer")

HELLO = "hello"
STATE = "state"
RECEIVE = "receive"
ACQUIRE = "acquire"
ABORT_RECEIVE = "abort-receive"
DATASETS = "datasets"

FULL = "full"
RESUME = "resume"

#: Longest request string accepted (a request is a few short fields).
MAX_REQUEST = 512

#: Longest response accepted, in bytes (16 MiB), by the client from a peer
#: (which is killed once it passes it) and by the server from itself (it
#: answers an error instead).  The largest reply is ``datasets``: about
#: 620 bytes per dataset plus 120 per snapshot (340 with 255-character
#: names), so 1000 datasets with 130 snapshots each (or 10,000 datasets with
#: 8) fit.  A peer that sends more is not speaking this protocol, or a
#: broken one would make the agent read without end.
MAX_RESPONSE = 16 * 1024 * 1024

_GUID = re.compile(r"\A[0-9]{1,20}\Z")
_GENERATION = re.compile(r"\A[0-9]{1,18}\Z")


class ProtocolError(InvalidName):
    """
    A request or response does not follow the peer protocol.
    """

    fix = ("Check that both nodes run the same flocker-zfs version and that the "
           "peer's authorized_keys entry runs `flocker-zfs peer-serve`.")


def dataset_state(dataset, resume_token=None):
    """
    The ``state`` response fields for one dataset.

    :param dataset: a :class:`~flocker_zfs.model.Dataset`, or ``None`` when
        the server has no dataset of that id.
    :param resume_token: the ``receive_resume_token`` of an interrupted
        resumable receive, or ``None``.
    :return: a JSON-able ``dict``; guids are decimal strings (JSON numbers
        lose precision above 2**53).
    """
    if dataset is None:
        return {"exists": False, "owner": None, "generation": 0, "writable": False,
                "handoff": None, "snapshots": [], "resume_token": resume_token}
    return {
        "exists": True,
        "owner": dataset.owner,
        "generation": dataset.generation,
        "writable": dataset.writable,
        "handoff": dataset.handoff,
        "snapshots": [{"name": s.name, "guid": str(s.guid), "createtxg": s.createtxg}
                      for s in dataset.snapshots],
        "resume_token": resume_token,
    }


def validate_guid(value):
    """
    :return: ``value`` (a decimal guid ``str``) as an ``int``.
    :raises ProtocolError: not a decimal number of at most 20 digits.
    """
    if not isinstance(value, str) or not _GUID.match(value) or int(value) >= 2 ** 64:
        raise ProtocolError("invalid guid %r: must be a decimal 64-bit number" % (value,))
    return int(value)


def _generation(value):
    if not isinstance(value, str) or not _GENERATION.match(value):
        raise ProtocolError("invalid generation %r: must be a decimal number" % (value,))
    return int(value)


def validate_size(value):
    """
    :return: a maximum size: ``None`` for ``"none"``, else the ``int``.
    :raises ProtocolError: neither.
    """
    if value == "none":
        return None
    if not isinstance(value, str) or not _GENERATION.match(value) or int(value) == 0:
        raise ProtocolError("invalid maximum size %r: bytes or 'none'" % (value,))
    return int(value)


def _base(value):
    if value in (FULL, RESUME):
        return value
    return validate_guid(value)


#: verb -> validators of its arguments, in order.
_VERBS = {
    HELLO: (),
    STATE: (validate_dataset_id,),
    RECEIVE: (validate_dataset_id, _base, validate_snapshot_name, validate_guid,
              validate_dataset_id, _generation, validate_size),
    ACQUIRE: (validate_dataset_id, _generation, validate_guid, validate_dataset_id),
    ABORT_RECEIVE: (validate_dataset_id,),
    DATASETS: (),
}

#: Every verb this version answers, as ``hello`` reports them.
VERBS = tuple(sorted(_VERBS))


#: verb -> how many trailing arguments may be left out (older clients).
_OPTIONAL = {RECEIVE: 1}


def request(verb, *args):
    """
    :return: the request argv for ``verb`` with ``args`` (``str`` or
        ``int``), validated.
    :raises ProtocolError: unknown verb, wrong count or a bad argument.
    """
    argv = list(PROGRAM) + [verb] + [str(a) for a in args]
    parse_request(shlex.join(argv))
    return argv


def parse_request(text):
    """
    Parse and validate a request string (``SSH_ORIGINAL_COMMAND``).

    :return: ``(verb, [parsed arguments])``.
    :raises ProtocolError: anything but a well-formed request.
    """
    if text is None or text.strip() == "":
        raise ProtocolError("no request: this key only runs flocker-zfs peer requests "
                            "(interactive login is not allowed)")
    if len(text) > MAX_REQUEST:
        raise ProtocolError("request too long (%d characters)" % (len(text),))
    try:
        argv = shlex.split(text)
    except ValueError as error:
        raise ProtocolError("unparseable request: %s" % (error,))
    if tuple(argv[:2]) != PROGRAM or len(argv) < 3:
        raise ProtocolError("not a flocker-zfs peer request: %r" % (text[:80],))
    verb, args = argv[2], argv[3:]
    validators = _VERBS.get(verb)
    if validators is None:
        raise ProtocolError("unknown peer request %r (known: %s)"
                            % (verb[:40], ", ".join(sorted(_VERBS))))
    optional = _OPTIONAL.get(verb, 0)
    if not len(validators) - optional <= len(args) <= len(validators):
        raise ProtocolError("peer request %s takes %d arguments, got %d"
                            % (verb, len(validators), len(args)))
    try:
        return verb, [check(arg) for check, arg in zip(validators, args)]
    except ProtocolError:
        raise
    except InvalidName as error:
        raise ProtocolError("bad argument to %s: %s" % (verb, error.summary()))


def encode_ok(**fields):
    """
    :return: the bytes of a success response.
    """
    return (json.dumps(dict(fields, ok=True), sort_keys=True) + "\n").encode("utf-8")


def encode_error(error):
    """
    :param FlockerZFSError error: why the request failed.
    :return: the bytes of a failure response.
    """
    return (json.dumps({
        "ok": False,
        "error": type(error).__name__,
        "message": error.summary(),
        "fix": error.fix,
    }, sort_keys=True) + "\n").encode("utf-8")


def limit_text(limit):
    """
    :return: a byte limit as messages give it: ``16 MiB (16777216 bytes)``.
    """
    return "%g MiB (%d bytes)" % (limit / (1024.0 * 1024), limit)


class ResponseTooLarge(ProtocolError):
    """
    A reply went past :data:`MAX_RESPONSE`: the client stopped reading it
    (and killed ssh), or the server refused to send it.
    """

    fix = ("A flocker-zfs reply is never this large: check that the peer's authorized_keys "
           "entry runs `flocker-zfs peer-serve` and not another command. If it does, the "
           "peer has more datasets and snapshots than one reply holds: destroy unneeded "
           "snapshots there.")

    @classmethod
    def from_peer(cls, peer, limit=MAX_RESPONSE):
        """
        :return: the error of a peer whose reply passed ``limit`` bytes.
        """
        return cls("peer %s sent more than %s without ending its reply; "
                   "it was cut off there" % (peer, limit_text(limit)))


class RemoteError(FlockerZFSError):
    """
    The peer refused or failed a request; it said why.

    :ivar str peer: the peer's address.
    :ivar str name: the error type name the peer reported.
    """

    def __init__(self, peer, name, message, fix):
        FlockerZFSError.__init__(self, "peer %s: %s" % (peer, message))
        self.peer = peer
        self.name = name
        self.fix = fix or "See the peer's log."


def is_unknown_verb(error, verb):
    """
    :return: ``True`` if ``error`` (from a call of ``verb``) is a server
        saying it does not know ``verb``: it runs an older flocker-zfs.
    """
    return (isinstance(error, RemoteError) and error.name == ProtocolError.__name__
            and ("unknown peer request %r" % (verb,)) in str(error))


def decode_response(peer, stdout):
    """
    :param bytes stdout: what the server printed.
    :return: the response ``dict`` when it says ``ok``.
    :raises RemoteError: the server reported an error.
    :raises ResponseTooLarge: longer than :data:`MAX_RESPONSE` (not decoded).
    :raises ProtocolError: the output is not a response.
    """
    if len(stdout) > MAX_RESPONSE:
        raise ResponseTooLarge.from_peer(peer)
    try:
        text = stdout.decode("utf-8").strip().splitlines()[-1]
        response = json.loads(text)
    except (UnicodeDecodeError, IndexError, ValueError):
        raise ProtocolError("peer %s answered %r, not a flocker-zfs response"
                            % (peer, stdout[:120]))
    if not isinstance(response, dict) or not isinstance(response.get("ok"), bool):
        raise ProtocolError("peer %s answered %r, not a flocker-zfs response"
                            % (peer, stdout[:120]))
    if not response["ok"]:
        raise RemoteError(peer, str(response.get("error")), str(response.get("message")),
                          str(response.get("fix") or ""))
    return response
