# test-case-name: flocker_zfs.test.test_sizes
"""
Sizes as people write them, and as they are shown.

One parser for every size that comes in (``create --size``, ``resize``,
``init --pool-size``, ``maximum_size`` in the deployment file): a whole
number of bytes, or a number with a binary unit.  Units are
case-insensitive, ``K`` is 1024 bytes, ``M`` 1024 K, and so on up to ``P``;
``B`` or ``iB`` may follow (``10G``, ``10gb`` and ``10GiB`` are the same).
A decimal part is allowed when the result is a whole number of bytes
(``1.5G``, not ``0.1K``).

The messages of :class:`InvalidSize` name the value and the problem only;
each caller puts its own context in front (the option, or the file and the
key path).
"""

import math
import re
from fractions import Fraction

from .errors import ConfigError
from .names import shown

#: Unit letters and their multipliers, largest first.
UNITS = (("P", 1 << 50), ("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10))

#: The largest size accepted: any program reading it as a signed 64-bit
#: number (as ZFS tools and many JSON readers do) gets it back unchanged.
MAXIMUM_SIZE = (1 << 63) - 1

_SCALES = dict(UNITS, **{"": 1})

#: Longer text is no size (and is not fed to int(), which refuses huge numbers).
_MAXIMUM_TEXT = 40

_SIZE = re.compile(r"\A([+-]?)([0-9]+)(?:\.([0-9]+))?[ \t]*(?:([KMGTP])(?:i?B)?|B)?\Z",
                   re.IGNORECASE | re.ASCII)


class InvalidSize(ConfigError):
    """
    A value is not a size, or not one the caller accepts.
    """

    fix = ("Give a whole number of bytes or a number with K, M, G, T or P (binary: "
           "1K = 1024 bytes), e.g. 512M or 1.5G.")


def _shown(value):
    if isinstance(value, int) and value.bit_length() > 128:
        return "of %d bits" % (value.bit_length(),)     # repr() refuses huge ints
    return shown(value)


def _exact(value):
    """:return: ``value`` as a :class:`Fraction` of bytes, or ``None`` if it is no size."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(value) if math.isfinite(value) else None
    if not isinstance(value, str) or len(value) > _MAXIMUM_TEXT:
        return None
    match = _SIZE.match(value.strip())
    if match is None:
        return None
    sign, whole, decimals, unit = match.groups()
    decimals = decimals or ""
    number = Fraction(int(whole + decimals), 10 ** len(decimals))
    return (-number if sign == "-" else number) * _SCALES[(unit or "").upper()]


def parse_size(value, minimum=1):
    """
    Read a size.

    :param value: an ``int`` (not a ``bool``), a ``float`` holding a whole
        number, or a string: ``"1073741824"``, ``"512M"``, ``"1.5G"``,
        ``"10GiB"`` ...
    :param int minimum: the smallest size the caller accepts (at least 1:
        a size of zero is never meaningful).
    :return: the size in bytes, an ``int`` from ``minimum`` to
        :data:`MAXIMUM_SIZE`.
    :raises InvalidSize: anything else.
    """
    exact = _exact(value)
    if exact is None:
        raise InvalidSize("invalid size %s: neither a number of bytes nor a number with a "
                          "unit K, M, G, T or P" % (_shown(value),))
    if exact.denominator != 1:
        raise InvalidSize("invalid size %s: not a whole number of bytes" % (_shown(value),))
    size = int(exact)
    if size < 1:
        raise InvalidSize("invalid size %s: not positive" % (_shown(value),))
    if size < minimum:
        raise InvalidSize("invalid size %s: below the minimum of %s"
                          % (_shown(value), format_size(minimum)))
    if size > MAXIMUM_SIZE:
        raise InvalidSize("invalid size %s: too large (sizes are below 2**63 bytes, 8192P)"
                          % (_shown(value),))
    return size


def format_size(size):
    """
    Write a size exactly, the inverse of :func:`parse_size`: in the largest
    unit that needs at most three decimals (``"10G"``, ``"1.5G"``), else in
    bytes (``"1000"``).

    :param int size: bytes, 0 or more.
    """
    for unit, scale in UNITS:
        if size >= scale and (size * 1000) % scale == 0:
            text = "%d.%03d" % divmod(size * 1000 // scale, 1000)
            return text.rstrip("0").rstrip(".") + unit
    return str(size)


def human_size(size):
    """
    Write a size rounded to one decimal of the largest unit it reaches
    (``"64.0M"``, ``"1.5T"``, ``"512B"``): for amounts measured rather than
    chosen (space used, bytes sent, rates).  Not exact, so not for sizes a
    person may copy back: use :func:`format_size` for those.

    :param int size: bytes, 0 or more.
    """
    for unit, scale in UNITS:
        if size >= scale:
            return "%.1f%s" % (size / scale, unit)
    return "%dB" % (size,)
