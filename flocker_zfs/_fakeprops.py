# test-case-name: flocker_zfs.test.test_fakezfs
"""
The ZFS dataset properties the fake ZFS knows: their kinds, defaults,
inheritance, parsing of ``zfs set`` values and formatting for ``zfs get``.

The table is a subset of ZFS's own (``zfs_prop.c``), in the same order, so
``zfs get all`` lists properties in the order real ZFS does.  Values are kept
as text (``"on"``, ``"/mnt/x"``) or integers (sizes, counts); formatting
follows libzfs (``zfs_nicenum``, ``zfs_nicestrtonum``, the creation date
format).  Pure: nothing here touches state or disk.
"""

import re
import time

from pyrsistent import PClass, field

ZFS_FUSE = "zfs-fuse"
OPENZFS = "openzfs"

#: Property kinds.
STRING, SIZE, NUMBER, INDEX, DATE, RATIO, PATH = (
    "string", "size", "number", "index", "date", "ratio", "path")

#: Sizes that accept ``none`` (stored as 0).
_QUOTAS = ("quota", "refquota", "reservation", "refreservation")


class Prop(PClass):
    """
    One native property.

    :ivar str name: canonical name.
    :ivar str kind: one of the kinds above.
    :ivar default: value when neither set nor inherited (``None``: computed).
    :ivar bool inherit: children inherit it.
    :ivar bool settable: ``zfs set`` accepts it.
    :ivar str applies: ``"both"``, ``"fs"`` (snapshots show ``-``) or ``"snap"``.
    :ivar str column: header in ``zfs list``.
    :ivar str choices: allowed values as the error message shows them.
    :ivar bool hidden: left out of ``zfs get all``.
    :ivar tuple profiles: implementations that have it.
    """

    name = field(type=str)
    kind = field(type=str)
    default = field(initial=None)
    inherit = field(type=bool, initial=False)
    settable = field(type=bool, initial=False)
    applies = field(type=str, initial="both")
    column = field(type=str, initial="")
    choices = field(type=str, initial="")
    hidden = field(type=bool, initial=False)
    profiles = field(type=tuple, initial=(ZFS_FUSE, OPENZFS))


_ONOFF = "on | off"


def _p(name, kind, default=None, inherit=False, settable=False, applies="both",
       column=None, choices="", hidden=False, profiles=(ZFS_FUSE, OPENZFS)):
    """Build a :class:`Prop`, the column defaulting to the upper-cased name."""
    return Prop(name=name, kind=kind, default=default, inherit=inherit, settable=settable,
                applies=applies, column=column or name.upper(), choices=choices,
                hidden=hidden, profiles=profiles)


PROPERTIES = (
    _p("type", STRING),
    _p("creation", DATE),
    _p("used", SIZE),
    _p("available", SIZE, applies="fs", column="AVAIL"),
    _p("referenced", SIZE, column="REFER"),
    _p("compressratio", RATIO, column="RATIO"),
    _p("mounted", INDEX, applies="fs"),
    _p("origin", STRING, applies="fs", hidden=True),
    _p("quota", SIZE, 0, settable=True, applies="fs"),
    _p("reservation", SIZE, 0, settable=True, applies="fs", column="RESERV"),
    _p("recordsize", SIZE, 131072, True, True, "fs", "RECSIZE"),
    _p("mountpoint", PATH, None, True, True, "fs"),
    _p("sharenfs", STRING, "off", True, True, "fs"),
    _p("checksum", INDEX, "on", True, True, "fs",
       choices="on | off | fletcher2 | fletcher4 | sha256"),
    _p("compression", INDEX, "off", True, True, "fs", "COMPRESS",
       choices="on | off | lzjb | gzip | gzip-[1-9] | zle"),
    _p("atime", INDEX, "on", True, True, "fs", choices=_ONOFF),
    _p("devices", INDEX, "on", True, True, choices=_ONOFF),
    _p("exec", INDEX, "on", True, True, choices=_ONOFF),
    _p("setuid", INDEX, "on", True, True, choices=_ONOFF),
    _p("readonly", INDEX, "off", True, True, "fs", "RDONLY", _ONOFF),
    _p("zoned", INDEX, "off", True, True, "fs", choices=_ONOFF),
    _p("snapdir", INDEX, "hidden", True, True, "fs", choices="hidden | visible"),
    _p("aclmode", INDEX, "groupmask", True, True, "fs",
       choices="discard | groupmask | passthrough"),
    _p("aclinherit", INDEX, "restricted", True, True, "fs",
       choices="discard | noallow | restricted | passthrough | passthrough-x"),
    _p("canmount", INDEX, "on", False, True, "fs", choices="on | off | noauto"),
    _p("xattr", INDEX, "on", True, True, choices=_ONOFF),
    _p("copies", INDEX, "1", True, True, "fs", choices="1 | 2 | 3"),
    _p("version", NUMBER),
    _p("utf8only", INDEX, "off"),
    _p("normalization", STRING, "none"),
    _p("casesensitivity", STRING, "sensitive"),
    _p("vscan", INDEX, "off", True, True, "fs", choices=_ONOFF),
    _p("nbmand", INDEX, "off", True, True, choices=_ONOFF),
    _p("sharesmb", STRING, "off", True, True, "fs"),
    _p("refquota", SIZE, 0, settable=True, applies="fs"),
    _p("refreservation", SIZE, 0, settable=True, applies="fs", column="REFRESERV"),
    _p("primarycache", INDEX, "all", True, True, choices="all | none | metadata"),
    _p("secondarycache", INDEX, "all", True, True, choices="all | none | metadata"),
    _p("usedbysnapshots", SIZE, applies="fs", column="USEDSNAP"),
    _p("usedbydataset", SIZE, applies="fs", column="USEDDS"),
    _p("usedbychildren", SIZE, applies="fs", column="USEDCHILD"),
    _p("usedbyrefreservation", SIZE, applies="fs", column="USEDREFRESERV"),
    _p("logbias", INDEX, "latency", True, True, "fs", choices="latency | throughput"),
    _p("dedup", INDEX, "off", True, True, "fs", choices="on | off | verify | sha256[,verify]"),
    _p("sync", INDEX, "standard", True, True, "fs", choices="standard | always | disabled",
       profiles=(OPENZFS,)),
    _p("defer_destroy", INDEX, applies="snap", column="DEFER_DESTROY"),
    _p("userrefs", NUMBER, applies="snap"),
    _p("receive_resume_token", STRING, applies="fs", column="RESUMETOK",
       profiles=(OPENZFS,)),
    _p("guid", NUMBER, hidden=True),
    _p("createtxg", NUMBER, hidden=True),
    _p("name", STRING, hidden=True),
)

_BY_NAME = dict((prop.name, prop) for prop in PROPERTIES)

ALIASES = {
    "avail": "available", "refer": "referenced", "ratio": "compressratio",
    "reserv": "reservation", "recsize": "recordsize", "compress": "compression",
    "rdonly": "readonly", "refreserv": "refreservation", "usedsnap": "usedbysnapshots",
    "usedds": "usedbydataset", "usedchild": "usedbychildren",
    "usedrefreserv": "usedbyrefreservation",
}

_USER = re.compile(r"\A[a-z0-9_.:-]*:[a-z0-9_.:-]*\Z")


def is_user_property(name):
    """
    :return: ``True`` if ``name`` is a valid user property (``module:name``,
        lowercase letters, digits, ``-_.:`` and at least one colon, not
        starting with a colon).
    """
    return (_USER.match(name) is not None and not name.startswith(":")
            and len(name) <= 256)


def lookup(name, profile):
    """
    :return: the :class:`Prop` called ``name`` (or one of its aliases) in
        ``profile``, or ``None`` if it is not a native property there.
    """
    prop = _BY_NAME.get(ALIASES.get(name, name))
    if prop is None or profile not in prop.profiles:
        return None
    return prop


def visible(profile):
    """
    :return: the properties ``zfs get all`` lists in ``profile``, in order.
    """
    return [prop for prop in PROPERTIES if profile in prop.profiles and not prop.hidden]


class BadValue(Exception):
    """
    A property value was refused; ``str()`` is ZFS's explanation.
    """


def nicestrtonum(text):
    """
    Parse a size the way libzfs does (``10M``, ``1.5G``, ``4096``, ``1kb``).

    :return: ``int`` bytes.
    :raises BadValue: with libzfs's wording.
    """
    if not text or not (text[0].isdigit() or text[0] == "."):
        raise BadValue("bad numeric value '%s'" % (text,))
    match = re.match(r"\d*", text)
    digits, rest = match.group(0), text[match.end():]
    fraction = None
    if rest.startswith("."):
        fmatch = re.match(r"\.\d*", rest)
        fraction, rest = digits + fmatch.group(0), rest[fmatch.end():]
    ends = "BKMGTPEZ"
    if rest == "":
        shift = 0
    else:
        index = ends.find(rest[0].upper())
        if index == -1 or not (len(rest) == 1 or
                               (len(rest) == 2 and rest[1] in "bB" and index != 0)):
            raise BadValue("invalid numeric suffix '%s'" % (rest,))
        shift = 10 * index
    if fraction is not None:
        value = int(float(fraction or "0") * (2 ** shift))
    else:
        value = int(digits or "0") << shift
    if value >= 2 ** 64:
        raise BadValue("numeric value is too large")
    return value


def nicenum(num):
    """
    Format a number the way ``zfs_nicenum`` does (``112K``, ``1.00M``, ``9.81E``).
    """
    n, index = num, 0
    while n >= 1024:
        n //= 1024
        index += 1
    unit = " KMGTPE"[index]
    if index == 0:
        return "%d" % (n,)
    if num & ((1 << (10 * index)) - 1) == 0:
        return "%d%s" % (n, unit)
    for precision in (2, 1, 0):
        text = "%.*f%s" % (precision, num / float(1 << (10 * index)), unit)
        if len(text) <= 5:
            return text
    return text


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_date(seconds):
    """
    Format a creation time like ``zfs get creation`` (``Sat Nov 28  0:31 2026``,
    strftime's ``%a %b %e %k:%M %Y`` in local time).
    """
    t = time.localtime(seconds)
    return "%s %s %2d %2d:%02d %d" % (_DAYS[t.tm_wday], _MONTHS[t.tm_mon - 1], t.tm_mday,
                                      t.tm_hour, t.tm_min, t.tm_year)


def format_value(prop, value, parsable):
    """
    Format a native property's value for ``zfs get``/``zfs list``.

    :param Prop prop: the property.
    :param value: its value (``int`` for sizes, numbers and dates).
    :param bool parsable: ``-p`` was given (exact numbers).
    :return: ``str``.
    """
    if value is None:
        return "-"
    if prop.kind == SIZE:
        if prop.name in _QUOTAS and value == 0 and not parsable:
            return "none"
        return str(value) if parsable else nicenum(value)
    if prop.kind == DATE:
        return str(value) if parsable else format_date(value)
    if prop.name == "guid" and not parsable:
        return nicenum(value)
    return str(value)


def parse_value(prop, text, is_snapshot):
    """
    Check and convert a value given to ``zfs set``/``create -o``.

    :param Prop prop: the property being set.
    :param str text: the value as typed.
    :param bool is_snapshot: the target is a snapshot.
    :return: the value to store (``int`` for sizes, else ``str``).
    :raises BadValue: with ZFS's wording.
    """
    if is_snapshot:
        raise BadValue("this property can not be modified for snapshots")
    if not prop.settable:
        raise BadValue("'%s' is readonly" % (prop.name,))
    if prop.kind == SIZE:
        if prop.name in _QUOTAS and text == "none":
            return 0
        value = nicestrtonum(text)
        if prop.name in ("quota", "refquota") and value == 0:
            raise BadValue("use 'none' to disable quota/refquota")
        return value
    if prop.kind == INDEX:
        allowed = [c.strip() for c in prop.choices.split("|")]
        if prop.name == "compression":
            allowed += ["gzip-%d" % (level,) for level in range(1, 10)]
        if text not in allowed:
            raise BadValue("'%s' must be one of '%s'" % (prop.name, prop.choices))
        return text
    if prop.kind == PATH:
        if text not in ("none", "legacy") and not text.startswith("/"):
            raise BadValue("'mountpoint' must be an absolute path, 'none', or 'legacy'")
        if text.startswith("/"):
            return text.rstrip("/") or "/"
        return text
    return text
