# test-case-name: flocker_zfs.test.test_cli
"""
What the ``flocker-zfs`` commands print: tables and one-line reports for
people, JSON documents for scripts, and the progress line of a transfer.

Pure formatting, apart from :class:`Progress`, which writes to the stream
it is given.  Sizes are binary (``K`` = 1024 bytes), as ``--size`` takes
them.  In JSON, node uuids are given in full, sizes in bytes, and ZFS
snapshot GUIDs as strings, because common JSON readers lose precision above
2**53.
"""

import json
import os
import traceback

from eliot import FileDestination, add_destinations, remove_destination

from ._actions import (
    AGENT_CLUSTER_STATE, AGENT_DEPLOYMENT, AGENT_ITERATION, CHANGE_CREATE, CHANGE_DELETE,
    CHANGE_DEMOTE, CHANGE_HANDOFF, CHANGE_PUSH, CHANGE_RECOVER, CHANGE_RESIZE)
from ._sizes import human_size
from .errors import ConfigError

#: States a dataset's copy on this node can be in (the STATE column).
WRITABLE, REPLICA, HANDING_OFF = "writable", "replica", "handing off"


def human(value):
    """
    :param value: bytes, or ``None``.
    :return: e.g. ``"64.0M"`` or ``"512B"`` (:func:`~flocker_zfs._sizes.human_size`);
        ``"-"`` for ``None`` (no limit).
    """
    return "-" if value is None else human_size(value)


def short(node_uuid):
    """
    :return: the first 8 characters of a uuid, enough to tell nodes apart in
        a table (JSON always has the full uuid).
    """
    return node_uuid[:8]


def dataset_state(dataset):
    """
    :return: :data:`WRITABLE`, :data:`HANDING_OFF` (read-only here while a
        handoff from this node is under way) or :data:`REPLICA`.
    """
    if dataset.writable:
        return WRITABLE
    return HANDING_OFF if dataset.handoff else REPLICA


def replicas(dataset):
    """
    :return: the sorted uuids of the nodes known to hold a replica (the
        ``peer_bases`` keys: peers this node has pushed to).
    """
    return sorted(dataset.peer_bases)


def snapshot_json(snapshot):
    return {"name": snapshot.name, "guid": str(snapshot.guid),
            "createtxg": snapshot.createtxg, "managed": snapshot.managed}


def dataset_json(dataset, node_uuid):
    """
    :param node_uuid: this node's uuid (``owned_here`` compares with it).
    :return: everything discovered about ``dataset``, JSON-ready.
    """
    newest = dataset.newest_snapshot()
    return {
        "dataset_id": dataset.dataset_id,
        "owner": dataset.owner,
        "owned_here": dataset.owned_by(node_uuid),
        "state": dataset_state(dataset),
        "writable": dataset.writable,
        "generation": dataset.generation,
        "maximum_size": dataset.maximum_size,
        "used": dataset.used,
        "referenced": dataset.referenced,
        "mountpoint": dataset.mountpoint,
        "mounted": dataset.mounted,
        "origin": dataset.origin,
        "handoff": dataset.handoff,
        "replicas": replicas(dataset),
        "peer_bases": {peer: str(guid) for peer, guid in sorted(dataset.peer_bases.items())},
        "resume_token": dataset.resume_token,
        "newest_snapshot": newest.name if newest else None,
        "snapshots": [snapshot_json(s) for s in dataset.snapshots],
    }


def status_json(state, node_uuid, identity, capabilities):
    """
    :param bool identity: ``node_uuid`` is this node's recorded identity
        (``False``: none exists yet, and ``node_uuid`` is ``null``).
    :param capabilities: the backend's detected ``Capabilities``.
    """
    return {
        "pool": state.pool,
        "node_uuid": node_uuid if identity else None,
        "implementation": capabilities.implementation,
        "version": capabilities.version,
        "datasets": [dataset_json(state.datasets[key], node_uuid)
                     for key in sorted(state.datasets)],
        "ignored": list(state.ignored),
    }


def push_json(result):
    """:param result: a ``PushResult``."""
    return dict(result.serialize(), guid=str(result.guid))


def handoff_json(result):
    """:param result: a ``HandoffResult``."""
    return dict(result.serialize())


def error_json(error):
    """
    The ``--json`` document of a failure (the same fields a peer's error
    response has).

    :param error: a ``FlockerZFSError``.
    """
    return {"ok": False, "error": type(error).__name__,
            "message": error.summary(), "fix": error.fix}


#: Set to ``1`` to print the traceback of an unexpected error on stderr.
DEBUG_VARIABLE = "FLOCKER_ZFS_DEBUG"


def fail(error, json, out, err):
    """
    Report a ``FlockerZFSError``: one line on ``err``, ``flocker-zfs:
    error: <cause>. Fix: <fix>`` (and the JSON error on ``out`` if ``json``).

    :return: 1, the exit status.
    """
    if json:
        out.write(dumps(error_json(error)))
    err.write("flocker-zfs: error: %s\n" % (" ".join(str(error).split()),))
    return 1


def unexpected(error, log_file, err, debug):
    """
    Report an unexpected exception (a bug) in one line saying where its
    traceback is: in ``log_file`` if there is one; on ``err`` too if
    ``debug``.  Call it from the ``except`` block.

    :return: 2, the exit status.
    """
    err.write("flocker-zfs: error: unexpected %s: %s. Fix: This is probably a bug; please "
              "report it with the traceback, %s.\n" % (
                  type(error).__name__, " ".join(str(error).split()),
                  "which is in the log file %s" % (log_file,) if log_file
                  else "which --log-file PATH records (or %s=1 prints)" % (DEBUG_VARIABLE,)))
    if debug:
        traceback.print_exc(file=err)
    return 2


def dumps(document):
    """:return: ``document`` as indented JSON text ending in a newline."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


# -- tables ---------------------------------------------------------------

_COLUMNS = ("DATASET", "OWNER", "STATE", "SIZE LIMIT", "USED", "NEWEST SNAPSHOT", "REPLICAS")


def _row(dataset, node_uuid):
    newest = dataset.newest_snapshot()
    if dataset.owner is None:
        owner = "?"
    elif dataset.owned_by(node_uuid):
        owner = "this node"
    else:
        owner = short(dataset.owner)
    return (dataset.dataset_id, owner, dataset_state(dataset),
            human(dataset.maximum_size), human(dataset.used),
            newest.name if newest else "-",
            ",".join(short(peer) for peer in replicas(dataset)) or "-")


def format_table(rows):
    """
    :param rows: equal-length tuples of strings, the header first.
    :return: the lines, columns left-aligned two spaces apart.
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in rows]


def status_table(state, node_uuid, width=None):
    """
    The ``status`` table: one row per dataset, then the datasets left alone.

    :param state: the pool's ``PoolState``.
    :param node_uuid: this node's uuid (its datasets' owner is "this node").
    :param width: the terminal's width; the MOUNTPOINT column is added when
        the rows still fit, always when ``None`` (not a terminal).
    :return: the text, ending in a newline.
    """
    datasets = [state.datasets[key] for key in sorted(state.datasets)]
    rows = [_COLUMNS] + [_row(dataset, node_uuid) for dataset in datasets]
    lines = format_table(rows)
    wide = format_table([row + (cell,) for row, cell in zip(
        rows, ["MOUNTPOINT"] + [dataset.mountpoint or "-" for dataset in datasets])])
    if width is None or max(len(line) for line in wide) <= width:
        lines = wide
    if not datasets:
        lines.append("(no datasets in pool %s)" % (state.pool,))
    for name in state.ignored:
        lines.append("ignored (not managed by flocker-zfs): %s" % (name,))
    return "\n".join(lines) + "\n"


def dataset_line(verb, dataset):
    """``created <id> (size limit 64.0M) at <mountpoint>``"""
    return "%s %s (size limit %s) at %s\n" % (
        verb, dataset.dataset_id, human(dataset.maximum_size), dataset.mountpoint or "-")


def push_line(result, peer):
    return "pushed %s to %s: snapshot %s (%s), %s in %.2f s\n" % (
        result.dataset_id, peer, result.snapshot,
        "incremental from %s" % (result.base,) if result.base else "full stream",
        human(result.bytes), result.duration)


def handoff_line(result, peer):
    if result.already:
        return "%s is already owned by %s (generation %d); nothing to do\n" % (
            result.dataset_id, peer, result.generation)
    return ("handed off %s to %s: generation %d, %d pre-copy round(s), %s sent, "
            "unwritable for %.2f s\n" % (
                result.dataset_id, peer, result.generation, result.rounds,
                human(result.bytes), result.unwritable))


_RECOVERED = {
    "owner": "%s: this node is the writable owner\n",
    "replica": "%s: the peer owns it; this node keeps a read-only replica\n",
    "none": "%s: no handoff in progress; nothing to do\n",
}


def recover_line(dataset_id, outcome):
    return _RECOVERED[outcome] % (dataset_id,)


def terminal_width(out):
    """The terminal's width, or ``None`` when ``out`` is not a terminal."""
    try:
        return os.get_terminal_size(out.fileno()).columns if out.isatty() else None
    except (AttributeError, OSError, ValueError):
        return None


# -- progress -------------------------------------------------------------

class Progress(object):
    """
    A live one-line progress bar for a transfer, redrawn in place with
    ``\\r`` on a terminal; nothing at all when ``stream`` is not a terminal
    (a log or a pipe would fill up with redraws).

    Called as ``progress(bytes_sent, estimated_total)``, the callback
    ``Replicator.push``/``handoff`` take; ``estimated_total`` is ``None``
    when ZFS cannot estimate (zfs-fuse), and then only bytes and rate show.

    :param reactor: ``IReactorTime``, for the rate.
    :param stream: where to draw (stderr, so stdout stays the report).
    :param str label: e.g. ``push 6f1c2b5e-...``.
    """

    BAR = 30

    def __init__(self, reactor, stream, label):
        self._reactor = reactor
        self._stream = stream
        self._label = label
        self._started = reactor.seconds()
        self._shown = False
        isatty = getattr(stream, "isatty", None)
        self._enabled = bool(isatty and isatty())

    def line(self, sent, total=None):
        """:return: the text of the bar for ``sent`` of ``total`` bytes now."""
        elapsed = max(self._reactor.seconds() - self._started, 1e-6)
        rate = sent / elapsed
        if not total:
            return "%s: %s sent, %s/s" % (self._label, human(sent), human(int(rate)))
        fraction = min(sent / total, 1.0)
        left = max(total - sent, 0) / rate if rate else 0
        return "%s: [%-*s] %3d%% %s of ~%s, %s/s, ~%ds left" % (
            self._label, self.BAR, "#" * int(fraction * self.BAR), fraction * 100,
            human(sent), human(total), human(int(rate)), left)

    def __call__(self, sent, total=None):
        if not self._enabled:
            return
        # Trailing spaces wipe what a longer previous line left behind.
        self._stream.write("\r%s   " % (self.line(sent, total),))
        self._stream.flush()
        self._shown = True

    def done(self):
        """End the bar's line, so what follows starts on a fresh one."""
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()
            self._shown = False


# -- output streams and logs ------------------------------------------------

def flush(stream):
    """Flush ``stream`` if it can be (a ``StringIO`` in tests need not)."""
    method = getattr(stream, "flush", None)
    if method is not None:
        method()


class LogFile(object):
    """
    An eliot destination appending JSON lines to ``path`` while a command
    runs.

    :raises ConfigError: the file cannot be opened.
    """

    def __init__(self, path):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise ConfigError("cannot open log file %s: %s" % (path, os.strerror(error.errno)),
                              fix="Pass a --log-file in a directory you can write.")
        self._file = os.fdopen(fd, "ab")
        self._destination = FileDestination(file=self._file)
        add_destinations(self._destination)

    def close(self):
        """Stop logging there and close the file."""
        remove_destination(self._destination)
        self._file.close()


def _cancelled(message):
    """
    :return: whether a failed action's end message is a cancellation (the
        agent stopping), also when it is wrapped: a ``DeferredList``'s
        ``FirstError`` names the ``CancelledError`` only in its text.
    """
    return "CancelledError" in "%s %s" % (message.get("exception", ""),
                                          message.get("reason", ""))


class AgentConsole(object):
    """
    An eliot destination printing on ``err`` what a running agent's operator
    must see, without a log file:

    - each failed iteration, deployment file read or state change, one line
      each time;
    - each change of situation, once: a peer becoming unreachable (with the
      reason; again if the reason changes) and reachable again; this node
      not listed in the deployment file, and listed again; a dataset writable
      on more than one node (a conflict, with the operator's fix; again if
      it changes) and settled again.

    Cancellations (the agent stopping) are quiet.
    """

    _FAILURES = (AGENT_ITERATION, AGENT_DEPLOYMENT, CHANGE_CREATE, CHANGE_RESIZE,
                 CHANGE_PUSH, CHANGE_HANDOFF, CHANGE_RECOVER, CHANGE_DELETE, CHANGE_DEMOTE)
    _WATCHED = _FAILURES + (AGENT_CLUSTER_STATE,)
    NOT_LISTED = "flocker_zfs:agent:not_in_deployment"
    CONFLICT = "flocker_zfs:agent:conflict"

    def __init__(self, err):
        self._err = err
        self._started = {}      # (task_uuid, action's level) -> its start message
        self._unreachable = {}  # node uuid -> reason, while unreachable
        self._not_listed = None     # (node uuid, path) while this node is not listed
        self._not_listed_in = set()     # iterations (task uuids) that said so
        self._conflicts = {}    # dataset id -> the reason last said, while in conflict

    def _say(self, text):
        self._err.write("flocker-zfs agent: %s\n" % (" ".join(text.split()),))
        flush(self._err)

    def __call__(self, message):
        if message.get("message_type") == self.CONFLICT:
            dataset_id, reason = message.get("dataset_id"), message.get("reason")
            if self._conflicts.get(dataset_id) != reason:
                self._conflicts[dataset_id] = reason
                self._say("dataset %s is in conflict: %s Fix: %s"
                          % (dataset_id, reason, message.get("fix")))
            return
        if message.get("message_type") == self.NOT_LISTED:
            self._not_listed_in.add(message.get("task_uuid"))
            listed = (message.get("node_uuid"), message.get("path"))
            if self._not_listed != listed:
                self._not_listed = listed
                self._say("this node %s is not listed in the deployment file %s, so the agent "
                          "changes nothing. Fix: add it under nodes there (on every node, with "
                          "the address its peers reach it at), or check that the dataset "
                          "section's node_file is this node's node.json." % listed)
            return
        if message.get("action_type") not in self._WATCHED:
            return
        # An action's end message lacks its start fields: remember them.
        key = (message.get("task_uuid"), tuple(message.get("task_level", ()))[:-1])
        status = message.get("action_status")
        if status == "started":
            self._started[key] = message
            return
        start = self._started.pop(key, {})
        if message["action_type"] == AGENT_CLUSTER_STATE:
            if status == "succeeded":
                self._peer(start, message)
            return
        if message["action_type"] == AGENT_ITERATION and status == "succeeded":
            # A round that did not find this node listed checked no conflicts.
            listed = message.get("task_uuid") not in self._not_listed_in
            self._iterated(message.get("task_uuid"))
            if listed:
                self._settled(message.get("conflicts"))
        if status != "failed" or _cancelled(message):
            return
        dataset_id = start.get("dataset_id")
        self._say("%s failed%s: %s" % (
            message["action_type"].rpartition(":")[2],
            " (dataset %s)" % (dataset_id,) if dataset_id else "",
            message.get("reason", "")))

    def _peer(self, start, end):
        """A node answered the ``datasets`` query or not: say so if that changed."""
        uuid = start.get("node_uuid")
        peer = "peer %s (node %s)" % (start.get("address"), uuid)
        if end.get("reachable"):
            if self._unreachable.pop(uuid, None) is not None:
                self._say("%s is reachable again" % (peer,))
            return
        reason = end.get("reason") or "no reason given"
        if self._unreachable.get(uuid) != reason:
            self._unreachable[uuid] = reason
            self._say("%s is unreachable: %s" % (peer, reason))

    def _settled(self, conflicts):
        """An iteration ended listing the datasets still in conflict."""
        if conflicts is None:
            return
        for dataset_id in sorted(set(self._conflicts) - set(conflicts)):
            del self._conflicts[dataset_id]
            self._say("dataset %s: no conflict found in the last round (at most one "
                      "writable copy among the nodes that answered)" % (dataset_id,))

    def _iterated(self, task_uuid):
        """An iteration ended: if it did not say this node is unlisted, it is listed."""
        if task_uuid in self._not_listed_in:
            self._not_listed_in.discard(task_uuid)
        elif self._not_listed is not None:
            self._say("this node %s is listed in the deployment file %s now"
                      % self._not_listed)
            self._not_listed = None
