# test-case-name: flocker_zfs.test.test_fakezfs
"""
``zfs send`` and ``zfs receive`` for the fake ZFS, with the fake's own
stream format.

A stream is a magic line, a JSON header line (snapshot name and guid, the
incremental base's guid, the payload's length and SHA-256) and a JSON
payload (the snapshot's files, and properties with ``send -p``).  Only the
fake reads it; real ZFS streams are not understood, nor the other way round.
Cutting a stream short is detected like a truncated real stream, and on
OpenZFS ``receive -s`` keeps a resume token, answered by ``send -t``.
"""

import base64
import binascii
import hashlib
import json
import zlib

from pyrsistent import pmap

from . import _fakestate as st
from ._fakecli import Fail, flags, parse, usage_error, values
from ._fakeprops import ZFS_FUSE, nicenum
from ._fakestate import Link

MAGIC = b"FAKEZFS-STREAM-1\n"

#: A real stream's first record is this long; less than that of garbage is
#: "failed to read", more is "bad magic number".
_BEGIN_RECORD = 312


class _Short(Exception):
    """The stream ended before its header was complete."""


class _BadMagic(Exception):
    """The stream is not a fake ZFS stream."""


def _encode_content(content):
    """A content map as JSON-able data (files base64-encoded)."""
    out = {}
    for path, value in content.items():
        if value is None:
            out[path] = ["d"]
        elif isinstance(value, Link):
            out[path] = ["l", value.target]
        else:
            out[path] = ["f", base64.b64encode(value).decode("ascii")]
    return out


def _decode_content(encoded):
    """The inverse of :func:`_encode_content`."""
    content = {}
    for path, value in encoded.items():
        if value[0] == "d":
            content[path] = None
        elif value[0] == "l":
            content[path] = Link(target=value[1])
        else:
            content[path] = base64.b64decode(value[1])
    return pmap(content)


def encode(header, content, props):
    """
    :return: a stream (``bytes``) for a snapshot's ``content``.
    """
    payload = json.dumps({"content": _encode_content(content), "props": props},
                         sort_keys=True).encode("utf-8")
    header = dict(header, length=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    return MAGIC + json.dumps(header, sort_keys=True).encode("utf-8") + b"\n" + payload


def decode_header(data):
    """
    :return: ``(header dict, payload bytes)``.
    :raises _Short: the header is incomplete.
    :raises _BadMagic: not a fake stream.
    """
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data) or len(data) < _BEGIN_RECORD:
            raise _Short()
        raise _BadMagic()
    line, newline, payload = data[len(MAGIC):].partition(b"\n")
    if not newline:
        raise _Short()
    try:
        header = json.loads(line.decode("utf-8"))
        header["toguid"], header["length"]
    except (ValueError, KeyError, TypeError):
        raise _BadMagic()
    return header, payload


def make_token(fields):
    """
    :return: a resume token shaped like OpenZFS's (``1-<crc>-<len>-<hex>``).
    """
    packed = zlib.compress(json.dumps(fields, sort_keys=True).encode("utf-8"))
    return "1-%x-%x-%s" % (zlib.crc32(packed), len(packed),
                           binascii.hexlify(packed).decode("ascii"))


def read_token(token):
    """
    :return: the fields in a token made by :func:`make_token`, or ``None``.
    """
    try:
        version, crc, length, text = token.split("-", 3)
        packed = binascii.unhexlify(text)
        if version != "1" or int(crc, 16) != zlib.crc32(packed) or int(length, 16) != len(packed):
            return None
        return json.loads(zlib.decompress(packed).decode("utf-8"))
    except (ValueError, TypeError, zlib.error, binascii.Error):
        return None


class StreamCommands(object):
    """
    ``zfs send`` and ``zfs receive``; mixed into
    :class:`flocker_zfs._fakezfs.FakeZFS`.
    """

    def _zfs_send(self, args):
        """``zfs send [-p] [-i base] fs@snap``, OpenZFS also ``-nP``, ``-t token``."""
        fuse = self.profile == ZFS_FUSE
        options, operands = parse(self.profile, "zfs", "send", args,
                                  ":i:p" if fuse else ":i:pnPvcLewt:",
                                  "I:RD" if fuse else "I:RDhbd:S")
        given = flags(options)
        if "t" in given:
            return self._send_resume(values(options, "t")[-1], given)
        if not operands:
            raise usage_error(self.profile, "zfs", "send", "missing snapshot argument")
        if len(operands) > 1:
            raise usage_error(self.profile, "zfs", "send", "too many arguments")
        name = operands[0]
        if "@" not in name:
            if fuse:
                raise usage_error(self.profile, "zfs", "send", "argument must be a snapshot")
            raise Fail(2, "FakeZFS does not emulate 'zfs send' of a filesystem\n")
        fs = name.split("@", 1)[0]
        if name not in self._state.datasets:
            if fuse:
                raise Fail(1, "WARNING: could not send %s: does not exist\n" % (name,))
            raise Fail(1, "cannot open '%s': dataset does not exist\n" % (name,))
        snap = self._state.datasets[name]
        base = None
        for text in values(options, "i"):
            base_name = fs + text if text.startswith("@") else text
            if "@" not in base_name:
                base_name = fs + "@" + base_name
            if base_name.split("@", 1)[0] != fs:
                raise usage_error(self.profile, "zfs", "send",
                                  "incremental source must be in same filesystem")
            if base_name not in self._state.datasets:
                raise Fail(1, "cannot open '%s': dataset does not exist\n" % (base_name,))
            base = self._state.datasets[base_name]
            if base.createtxg >= snap.createtxg:
                raise Fail(1, "warning: cannot send '%s': not an earlier snapshot from the "
                           "same fs\n" % (name,))
        if "n" in given:
            return self._estimate(snap, base, given)
        props = dict(self._state.datasets[fs].local) if "p" in given else {}
        header = {"toname": name, "toguid": snap.guid, "creation": snap.creation,
                  "fromguid": base.guid if base is not None else 0,
                  "fromname": base.name if base is not None else None}
        return encode(header, snap.content, props)

    def _estimate(self, snap, base, given):
        """The output of ``zfs send -n`` (``-P``: parsable), from the file bytes."""
        size = st.content_bytes(snap.content) + st.OVERHEAD[self.profile] // 4
        if base is not None:
            old = set(base.content.items())
            size = sum(len(v) for k, v in snap.content.items()
                       if isinstance(v, bytes) and (k, v) not in old) + 4096
        if "P" in given:
            first = ("incremental\t%s\t%s" % (base.name, snap.name) if base is not None
                     else "full\t%s" % (snap.name,))
            return ("%s\t%d\nsize\t%d\n" % (first, size, size)).encode("utf-8")
        first = ("incremental send from %s to %s" % (base.name, snap.name) if base is not None
                 else "full send of %s" % (snap.name,))
        return ("%s estimated size is %s\ntotal estimated size is %s\n"
                % (first, nicenum(size), nicenum(size))).encode("utf-8")

    def _send_resume(self, token, given):
        """``zfs send -t TOKEN``: the stream of the snapshot the token names."""
        fields = read_token(token)
        if fields is None:
            raise Fail(1, "cannot resume send: resume token is corrupt (invalid format)\n")
        found = [d for d in self._state.datasets.values()
                 if d.kind == st.SNAPSHOT and d.guid == fields["toguid"]]
        if not found:
            raise Fail(1, "cannot resume send: '%s' used in the initial send no longer "
                       "exists\n" % (fields["toname"],))
        snap = found[0]
        header = {"toname": snap.name, "toguid": snap.guid, "creation": snap.creation,
                  "fromguid": fields["fromguid"], "fromname": None, "resume": True}
        if "n" in given:
            if "v" not in given:
                return b""
            # OpenZFS prints the token's nvlist to stdout on a dry run.
            lines = ["resume token contents:", "nvlist version: 0"]
            if fields.get("fromguid"):
                lines.append("\tfromguid = 0x%x" % (fields["fromguid"],))
            lines += ["\tobject = 0x%x" % (fields.get("object", 1),),
                      "\toffset = 0x%x" % (fields.get("offset", 0),),
                      "\tbytes = 0x0",
                      "\ttoguid = 0x%x" % (fields["toguid"],),
                      "\ttoname = %s" % (fields.get("toname", snap.name),),
                      "full send of %s estimated size is %s"
                      % (snap.name, nicenum(st.content_bytes(snap.content))),
                      "total estimated size is %s" % (nicenum(st.content_bytes(snap.content)),)]
            return ("\n".join(lines) + "\n").encode("utf-8")
        return encode(header, snap.content, {})

    def _zfs_receive(self, args, data):
        """``zfs receive [-Fu] [-d|-e] target``, OpenZFS also ``-s``, ``-A``, ``-o``."""
        fuse = self.profile == ZFS_FUSE
        options, operands = parse(self.profile, "zfs", "receive", args,
                                  "Fdeu" if fuse else "o:FdeusA", "vn" if fuse else "x:hvnM")
        given = flags(options)
        if not operands:
            raise usage_error(self.profile, "zfs", "receive", "missing snapshot argument")
        if len(operands) > 1:
            raise usage_error(self.profile, "zfs", "receive", "too many arguments")
        target = operands[0]
        if "A" in given:
            return self._abort_receive(target)
        try:
            header, payload = decode_header(data)
        except _Short:
            raise Fail(1, "cannot receive: failed to read from stream\n")
        except _BadMagic:
            raise Fail(1, "cannot receive: invalid stream (bad magic number)\n")
        incremental = bool(header.get("fromguid"))
        resuming = bool(header.get("resume"))
        what = ("cannot receive resume stream" if resuming else
                "cannot receive incremental stream" if incremental
                else "cannot receive new filesystem stream")
        toname = header["toname"]
        fs, snapname = target, toname.split("@", 1)[1]
        if "@" in target:
            fs, snapname = target.split("@", 1)
        if "d" in given or "e" in given:
            if not self._exists(target):
                raise Fail(1, "cannot receive: specified fs (%s) does not exist\n" % (target,))
            path = toname.split("@", 1)[0]
            if "e" in given:
                tail = path.rsplit("/", 1)[-1]
            else:
                tail = path.split("/", 1)[1] if "/" in path else ""
            fs = target.rstrip("/") + ("/" + tail if tail else "")
        props = dict(value.split("=", 1) for value in values(options, "o") if "=" in value)
        base = None
        if incremental or resuming:
            fs, base, skip = self._check_incremental(what, fs, snapname, header, given)
            if skip:
                return b""
        else:
            self._check_full(what, fs, given)
        complete = (len(payload) >= header["length"]
                    and hashlib.sha256(payload[:header["length"]]).hexdigest()
                    == header.get("sha256"))
        if not complete:
            return self._incomplete(what, fs, header, given, len(payload) < header["length"])
        decoded = json.loads(payload[:header["length"]].decode("utf-8"))
        content = _decode_content(decoded["content"])
        self._check_space(what, fs, content)
        if base is not None and "F" in given:
            # -F: zfs-fuse rolls back to the newest snapshot; OpenZFS to the
            # base, destroying the snapshots after it.
            if self.profile != ZFS_FUSE:
                self._destroy([s.name for s in st.snapshots(self._state, fs)
                               if s.createtxg > base.createtxg])
            self._set_content(fs, st.snapshots(self._state, fs)[-1].content)
        self._apply_receive(fs, snapname, header, content, decoded.get("props", {}), props,
                            given)
        return b""

    def _check_full(self, what, fs, given):
        """The checks ZFS makes before receiving a full stream."""
        if self._exists(fs):
            dataset = self._state.datasets[fs]
            if dataset.resume_token is not None:
                raise Fail(1, "%s: destination %s contains partially-complete state from "
                           "\"zfs receive -s\".\n" % (what, fs))
            if "F" not in given:
                raise Fail(1, "%s: destination '%s' exists\nmust specify -F to overwrite it\n"
                           % (what, fs))
            snaps = st.snapshots(self._state, fs)
            if snaps:
                raise Fail(1, "%s: destination has snapshots (eg. %s)\nmust destroy them to "
                           "overwrite it\n" % (what, snaps[0].name))
            return
        if "/" not in fs:
            raise Fail(1, "%s: destination '%s' does not exist\n" % (what, fs))
        parent = st.parent_name(fs)
        if not self._exists(parent):
            if self.profile == ZFS_FUSE:
                raise Fail(1, "cannot open '%s': dataset does not exist\n%s: dataset does not "
                           "exist\n" % (fs, what))
            raise Fail(1, "cannot open '%s': dataset does not exist\n%s: unable to restore to "
                       "destination\n" % (parent, what))

    def _check_incremental(self, what, fs, snapname, header, given):
        """
        The checks ZFS makes on an incremental (or resumed) stream, in the
        order each implementation's kernel makes them.

        :return: ``(filesystem the stream goes into, base snapshot or None,
            True if the snapshot is already there and the stream is skipped)``.
        """
        fuse = self.profile == ZFS_FUSE
        if not self._exists(fs) and fuse and not header.get("resume"):
            # zfs-fuse's libzfs looks for the base snapshot by guid in the
            # destination's pool and receives next to it instead.
            found = sorted((d for d in self._state.datasets.values()
                            if d.kind == st.SNAPSHOT and d.guid == header["fromguid"]
                            and st.pool_of(d.name) == st.pool_of(fs)), key=st.sort_key)
            if found:
                fs = found[0].name.split("@", 1)[0]
        if not self._exists(fs):
            raise Fail(1, "%s: destination '%s' does not exist\n" % (what, fs))
        dataset = self._state.datasets[fs]
        if header.get("resume"):
            fields = read_token(dataset.resume_token or "") or {}
            if fields.get("toguid") != header["toguid"]:
                raise Fail(1, "%s: destination %s does not have a matching resumable receive "
                           "state\n" % (what, fs))
            return fs, None, False
        if dataset.resume_token is not None:
            raise Fail(1, "%s: destination %s contains partially-complete state from "
                       "\"zfs receive -s\".\n" % (what, fs))
        snaps = st.snapshots(self._state, fs)
        base = [s for s in snaps if s.guid == header["fromguid"]]
        self._sync()
        live = self._state.datasets[fs].content
        target = "%s@%s" % (fs, snapname)
        if fuse:
            # Changes since the newest snapshot; then the newest must be the
            # base, or hold the same data as the base.
            if "F" not in given and snaps and live != snaps[-1].content:
                raise Fail(1, "%s: destination %s has been modified\nsince most recent "
                           "snapshot\n" % (what, fs))
            if not base or base[0].content != snaps[-1].content:
                raise Fail(1, "%s: most recent snapshot of %s does not\nmatch incremental "
                           "source\n" % (what, fs))
        if target in self._state.datasets:
            # libzfs skips a stream whose snapshot is already there.
            if any(s.guid == header["toguid"] for s in snaps):
                return fs, None, True
            raise Fail(1, "cannot restore to %s: destination already exists\n" % (target,))
        if not fuse:
            # OpenZFS: the base may be any snapshot, and there must be no
            # changes since it.
            if not base:
                raise Fail(1, "%s: most recent snapshot of %s does not\nmatch incremental "
                           "source\n" % (what, fs))
            if "F" not in given and live != base[0].content:
                raise Fail(1, "%s: destination %s has been modified\nsince most recent "
                           "snapshot\n" % (what, fs))
        return fs, base[0], False

    def _check_space(self, what, fs, content):
        """Fail with ``out of space`` if the new data does not fit in the pool."""
        self._sync()
        space = st.Space(self._state, st.OVERHEAD[self.profile])
        pool = self._state.pools[st.pool_of(fs)]
        old = self._state.datasets[fs].content if fs in self._state.datasets else pmap()
        added = sum(len(v) for k, v in content.items()
                    if isinstance(v, bytes) and old.get(k) != v)
        if space.pool_allocated(pool.name) + added > pool.size:
            raise Fail(1, "%s: out of space\n" % (what,))

    def _incomplete(self, what, fs, header, given, truncated):
        """Fail for a cut or corrupt stream; OpenZFS ``-s`` keeps a resume token."""
        if self.profile == ZFS_FUSE:
            raise Fail(1, "%s: invalid backup stream\n" % (what,))
        if "s" not in given:
            reason = "incomplete stream" if truncated else "checksum mismatch"
            raise Fail(1, "%s: %s\n" % (what, reason))
        token = make_token({"toguid": header["toguid"], "fromguid": header.get("fromguid", 0),
                            "toname": header["toname"], "object": 1, "offset": 0})
        if self._exists(fs):
            self._put(self._state.datasets[fs].set(resume_token=token))
        else:
            self._put(st.FakeDataset(name=fs, kind=st.FILESYSTEM, guid=self._guid(),
                                     createtxg=self._txg(), creation=self._now(),
                                     resume_token=token, partial=True))
        raise Fail(1, "%s: checksum mismatch or incomplete stream.\nPartially received "
                   "snapshot is saved.\nA resuming stream can be generated on the sending "
                   "system by running:\n    zfs send -t %s\n" % (what, token))

    def _apply_receive(self, fs, snapname, header, content, stream_props, props, given):
        """Store the received snapshot and content; mount a new filesystem."""
        existing = self._state.datasets.get(fs)
        if existing is None or existing.partial:
            if existing is not None:
                self._state = self._state.without(fs)
            self._put(st.FakeDataset(
                name=fs, kind=st.FILESYSTEM, guid=self._guid(), createtxg=self._txg(),
                creation=self._now(), received=pmap(stream_props), local=pmap(props)))
        else:
            self._put(existing.set(resume_token=None))
        self._set_content(fs, content, stale=self.profile == ZFS_FUSE)
        self._put(st.FakeDataset(name="%s@%s" % (fs, snapname), kind=st.SNAPSHOT,
                                 guid=header["toguid"], createtxg=self._txg(),
                                 creation=header.get("creation", self._now()),
                                 content=content))
        if "u" not in given and self._can_automount(fs):
            try:
                self._mount(fs)
            except Fail:
                # As real ZFS: the data is received even if it cannot be mounted.
                pass

    def _abort_receive(self, fs):
        """``zfs receive -A``: drop the state of an interrupted ``receive -s``."""
        dataset = self._state.datasets.get(fs)
        if dataset is None or dataset.resume_token is None:
            raise Fail(1, "'%s' does not have any resumable receive state to abort\n" % (fs,))
        if dataset.partial:
            self._state = self._state.without(fs)
        else:
            self._put(dataset.set(resume_token=None))
        return b""
