"""RegexFullMatch (opset 20): whether each string of X matches the `pattern` attribute as a whole (RE2's
FullMatch, default options: UTF-8, Perl classes, \\b, case sensitive, ^ and $ at the ends of the text).

The pattern is compiled here, at compile time, into a Thompson NFA over bytes; the C kernel
(templates/c/kernels/regex_match.c.j2) runs it as a Pike VM (a set of threads per position, no
backtracking), so the time is linear in the string's length times the program's, whatever the pattern.
`full_match` below runs the same program in Python (the reference, so constant folding agrees with C).

Supported (RE2's syntax and meanings):
  literals, UTF-8 text (each character its UTF-8 bytes), the escapes \\a \\f \\t \\n \\r \\v, \\xHH, \\x{H...},
  octal \\0, \\12, \\123, a backslash before any ASCII punctuation or space, \\Q...\\E (literal text);
  `.` (one UTF-8 character other than newline; any with the s flag), \\C (any one byte);
  classes [...] and [^...] with ranges, any code points, \\d \\s \\w (ASCII: [0-9], [\\t\\n\\f\\r ],
  [0-9A-Za-z_]), their negations \\D \\S \\W (which match newline and any non-ASCII character), and
  [:alpha:]-style POSIX classes (ASCII, also [:^alpha:]); a negated class, \\D \\S \\W, or `.` consumes one
  whole UTF-8 sequence, with RE2's byte ranges (loose ones for all of U+0080..U+10FFFF);
  anchors ^ $ \\A \\z, \\b \\B (ASCII word characters); groups (...), (?:...), (?P<name>...), (?<name>...);
  flags (?s) (`.` matches newline), (?m) (^ and $ at line ends too), (?U) (no effect on a full match),
  their negations and (?flags:...) groups; alternation |; quantifiers * + ? {n} {n,}
  {n,m} and their lazy forms (the same thing for a full match). RE2's limits hold: counts at most 1000,
  also multiplied through nested counted repetitions; a stacked quantifier (a**) is malformed.

Refused with UnsupportedError: backreferences (\\1, (?P=name)), lookaround and atomic groups, possessive
quantifiers, Unicode classes (\\p, \\P), case-insensitive matching ((?i)), groups nested more than 100
deep, and a program longer than 20000 instructions. A pattern RE2 rejects raises ModelError.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import MlccError, ModelError, UnsupportedError
from ..ir.dtypes import BOOL, STRING
from .common import need_input
from .registry import Kernel, OpDef, register
from .strings import heap_kernel

MAX_PROGRAM = 20000  # instructions
MAX_REPEAT = 1000  # RE2's bound on a count, and on the product of nested counts
MAX_DEPTH = 100  # nested groups
MAX_RUNE = 0x10FFFF

# Instructions: (op, a, b). SET: the byte at the position must be in the 256-bit set a (an int); advance.
# SPLIT: continue at a and at b. JMP: continue at a. ASSERT: continue if assertion a holds. MATCH: a match.
SET, SPLIT, JMP, ASSERT, MATCH = range(5)
# Assertions, on the bytes before and after the position.
BEGIN_TEXT, END_TEXT, WORD_BOUNDARY, NOT_WORD_BOUNDARY, BEGIN_LINE, END_LINE = range(6)

Program = tuple[tuple[int, int, int], ...]


# ---- The parsed pattern ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    """A node of the parsed pattern. kind: "chars" (one character among the code point `ranges`), "byte"
    (any one byte), "assert" (assertion `arg`), "concat" / "alt" (of `items`), "repeat" (items[0], `lo` to
    `hi` times; hi None: no bound). weight: the largest product of counted repetitions ({n,m}) on a path
    down from here, which RE2 bounds."""

    kind: str
    items: tuple[_Node, ...] = ()
    ranges: tuple[tuple[int, int], ...] = ()
    arg: int = 0
    lo: int = 0
    hi: int | None = None
    weight: int = 1


def _chars(ranges) -> _Node:
    return _Node("chars", ranges=_normalize(ranges))


def _group(kind: str, items: list[_Node]) -> _Node:
    if len(items) == 1:
        return items[0]
    return _Node(kind, items=tuple(items), weight=max((i.weight for i in items), default=1))


def _normalize(ranges) -> tuple[tuple[int, int], ...]:
    """Sorted, overlapping and adjacent ranges merged (as RE2 keeps a class: its byte code depends on it)."""
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def _negate(ranges) -> tuple[tuple[int, int], ...]:
    """The code points 0..U+10FFFF not in `ranges`."""
    out, start = [], 0
    for lo, hi in _normalize(ranges):
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_RUNE:
        out.append((start, MAX_RUNE))
    return tuple(out)


_DIGIT = ((0x30, 0x39),)
_SPACE = ((0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20))
_WORD = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_PERL = {"d": _DIGIT, "s": _SPACE, "w": _WORD}
_POSIX = {
    "alnum": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    "alpha": ((0x41, 0x5A), (0x61, 0x7A)),
    "ascii": ((0x00, 0x7F),),
    "blank": ((0x09, 0x09), (0x20, 0x20)),
    "cntrl": ((0x00, 0x1F), (0x7F, 0x7F)),
    "digit": _DIGIT,
    "graph": ((0x21, 0x7E),),
    "lower": ((0x61, 0x7A),),
    "print": ((0x20, 0x7E),),
    "punct": ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)),
    "space": ((0x09, 0x0D), (0x20, 0x20)),
    "upper": ((0x41, 0x5A),),
    "word": _WORD,
    "xdigit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
}
_CONTROL_ESCAPES = {"a": 0x07, "f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09, "v": 0x0B}
_OCTAL, _HEX = "01234567", "0123456789abcdefABCDEF"
_REFUSED_GROUPS = (  # after "(?": Perl's groups that RE2 lacks
    ("P=", "a backreference"),
    ("P>", "a recursive call"),
    ("=", "lookahead"),
    ("!", "lookahead"),
    ("<=", "lookbehind"),
    ("<!", "lookbehind"),
    (">", "an atomic group"),
)


def _perl_class(letter: str) -> tuple[tuple[int, int], ...]:
    """\\d \\s \\w (ASCII), or the negation of one for \\D \\S \\W."""
    ranges = _PERL[letter.lower()]
    return _negate(ranges) if letter.isupper() else ranges


class _Parser:
    """Recursive descent over the pattern's code points, following RE2's parser (re2/parse.cc) in what it
    accepts. `flags` holds "m" and "s" while on; a group restores them at its end, as RE2 does."""

    def __init__(self, pattern: str) -> None:
        self.text = pattern
        self.pos = 0
        self.flags: frozenset[str] = frozenset()
        self.depth = 0

    def fail(self, what: str) -> ModelError:
        return ModelError(f"pattern {_show(self.text)} is not valid RE2 syntax: {what} (near offset {self.pos})")

    def refuse(self, what: str) -> UnsupportedError:
        return UnsupportedError(f"pattern {_show(self.text)}: {what} is not supported (near offset {self.pos})")

    def peek(self, ahead: int = 0) -> str:
        i = self.pos + ahead
        return self.text[i] if i < len(self.text) else ""

    def take(self) -> str:
        c = self.peek()
        if not c:
            raise self.fail("unexpected end of the pattern")
        self.pos += 1
        return c

    def looking_at(self, s: str) -> bool:
        return self.text.startswith(s, self.pos)

    def next_in(self, chars: str, ahead: int = 0) -> bool:
        c = self.peek(ahead)
        return bool(c) and c in chars

    def parse(self) -> _Node:
        node = self.alternation()
        if self.peek() == ")":
            raise self.fail("unexpected )")
        return node

    def alternation(self) -> _Node:
        branches = [self.concatenation()]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.concatenation())
        return _group("alt", branches)

    def concatenation(self) -> _Node:
        items: list[_Node] = []
        after_quantifier = False
        while self.peek() not in ("", "|", ")"):
            start = self.pos
            bounds = self.quantifier()
            if bounds is None:
                items.extend(self.atom())
                after_quantifier = False
                continue
            if after_quantifier:
                self.pos = start
                if self.peek() == "+":
                    raise self.refuse("a possessive quantifier")
                raise self.fail("bad repetition operator (a quantifier after a quantifier)")
            if not items:
                raise self.fail("missing argument to a repetition operator")
            items[-1] = self.repeat(items[-1], *bounds)
            after_quantifier = True
        return _group("concat", items)

    def quantifier(self) -> tuple[int, int | None] | None:
        """The bounds of the quantifier here (its lazy `?` taken too), or None if there is none (a `{` that
        does not start a valid count is a literal, as in RE2)."""
        c = self.peek()
        if c in ("*", "+", "?"):
            self.pos += 1
            bounds = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        elif c == "{":
            bounds = self.counted()
            if bounds is None:
                return None
        else:
            return None
        if self.peek() == "?":
            self.pos += 1
        return bounds

    def counted(self) -> tuple[int, int | None] | None:
        """{n}, {n,} or {n,m} here, consumed, or None (nothing consumed)."""
        start = self.pos
        self.pos += 1
        bounds = self.count_bounds()
        if bounds is None or self.peek() != "}":
            self.pos = start
            return None
        self.pos += 1
        lo, hi = bounds
        if lo > MAX_REPEAT or (hi is not None and (hi > MAX_REPEAT or hi < lo)):
            self.pos = start
            raise self.fail(f"bad repetition count (at most {MAX_REPEAT}, the first at most the second)")
        return bounds

    def count_bounds(self) -> tuple[int, int | None] | None:
        """n, "n," or "n,m" (inside braces); None if it is not one."""
        lo = self.integer()
        if lo is None or self.peek() != ",":
            return None if lo is None else (lo, lo)
        self.pos += 1
        if self.peek() == "}":
            return lo, None
        hi = self.integer()
        return None if hi is None else (lo, hi)

    def integer(self) -> int | None:
        """A decimal count here, as RE2 reads one: no leading zero, at most 9 digits; else None."""
        end = self.pos
        while end < len(self.text) and self.text[end] in "0123456789":
            end += 1
        digits = self.text[self.pos : end]
        if not digits or len(digits) > 9 or (len(digits) > 1 and digits[0] == "0"):
            return None
        self.pos = end
        return int(digits)

    def repeat(self, node: _Node, lo: int, hi: int | None) -> _Node:
        count = hi if hi is not None else lo
        weight = node.weight * max(count, 1)
        if weight > MAX_REPEAT:
            raise self.fail(f"nested repetition counts multiply to more than {MAX_REPEAT}")
        return _Node("repeat", items=(node,), lo=lo, hi=hi, weight=weight)

    def atom(self) -> list[_Node]:
        """The nodes of the next item: one mostly, none for a flags group, one per character of \\Q...\\E."""
        c = self.take()
        if c == "(":
            return self.group()
        if c == "[":
            return [_chars(self.char_class())]
        if c == ".":
            return [_chars(((0, MAX_RUNE),) if "s" in self.flags else ((0, 0x09), (0x0B, MAX_RUNE)))]
        if c == "^":
            return [_Node("assert", arg=BEGIN_LINE if "m" in self.flags else BEGIN_TEXT)]
        if c == "$":
            return [_Node("assert", arg=END_LINE if "m" in self.flags else END_TEXT)]
        if c == "\\":
            return self.escape()
        return [_chars(((ord(c), ord(c)),))]

    def escape(self) -> list[_Node]:
        """After a backslash outside a class."""
        c = self.peek()
        assertions = {"b": WORD_BOUNDARY, "B": NOT_WORD_BOUNDARY, "A": BEGIN_TEXT, "z": END_TEXT}
        if c in assertions:
            self.pos += 1
            return [_Node("assert", arg=assertions[c])]
        if c == "C":
            self.pos += 1
            return [_Node("byte")]
        if c == "Q":
            self.pos += 1
            end = self.text.find("\\E", self.pos)
            end = len(self.text) if end < 0 else end
            literal, self.pos = self.text[self.pos : end], min(end + 2, len(self.text))
            return [_chars(((ord(ch), ord(ch)),)) for ch in literal]
        if self.next_in("dDsSwW"):
            self.pos += 1
            return [_chars(_perl_class(c))]
        if self.next_in("pP"):
            raise self.refuse("a Unicode class (\\p, \\P)")
        code = self.escaped_char()
        return [_chars(((code, code),))]

    def escaped_char(self) -> int:
        """The code point of a one-character escape (after the backslash); shared with classes."""
        if not self.peek():
            raise self.fail("trailing backslash")
        c = self.take()
        if c < "\x80" and not c.isalnum():
            return ord(c)
        if c in _CONTROL_ESCAPES:
            return _CONTROL_ESCAPES[c]
        if c == "0" or (c in _OCTAL and self.next_in(_OCTAL)):
            code = int(c)
            for _ in range(2):
                if self.next_in(_OCTAL):
                    code = code * 8 + int(self.take())
            return code
        if c in "123456789":
            raise self.refuse("a backreference")
        if c == "x":
            return self.hex_escape()
        self.pos -= 1
        raise self.fail(f"invalid escape \\{c}")

    def hex_escape(self) -> int:
        """\\xHH or \\x{H...} (after the x)."""
        if self.peek() == "{":
            end = self.text.find("}", self.pos)
            digits = self.text[self.pos + 1 : end] if end >= 0 else ""
            if not digits or any(d not in _HEX for d in digits) or int(digits, 16) > MAX_RUNE:
                raise self.fail("bad \\x{...} escape")
            self.pos = end + 1
            return int(digits, 16)
        digits = self.text[self.pos : self.pos + 2]
        if len(digits) < 2 or any(d not in _HEX for d in digits):
            raise self.fail("bad \\x escape (two hex digits needed)")
        self.pos += 2
        return int(digits, 16)

    def group(self) -> list[_Node]:
        """After "(": a group's node, or none for a flags group (?flags)."""
        flags = self.flags
        if self.peek() == "?":
            self.pos += 1
            flags = self.group_prefix()
            if flags is None:  # (?flags): they hold from here to the end of the enclosing group
                return []
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.refuse(f"nesting groups more than {MAX_DEPTH} deep")
        outer, self.flags = self.flags, flags
        node = self.alternation()
        if self.peek() != ")":
            raise self.fail("missing )")
        self.pos += 1
        self.flags = outer
        self.depth -= 1
        return [node]

    def group_prefix(self) -> frozenset[str] | None:
        """After "(?": the flags the group's body starts with; None for (?flags), which sets self.flags."""
        for prefix, what in _REFUSED_GROUPS:
            if self.looking_at(prefix):
                raise self.refuse(what)
        if self.looking_at("P<") or self.looking_at("<"):
            self.pos += 2 if self.peek() == "P" else 1
            end = self.text.find(">", self.pos)
            name = self.text[self.pos : end] if end >= 0 else ""
            if not name or not all(ch == "_" or ch.isalnum() for ch in name):
                raise self.fail("bad name of a named group")
            self.pos = end + 1
            return self.flags
        return self.flag_list()

    def flag_list(self) -> frozenset[str] | None:
        """Flags up to ":" (returned, for the group) or ")" (set here; None returned)."""
        flags, negated, seen = set(self.flags), False, False
        while True:
            c = self.take()
            if c in ("i", "m", "s", "U"):
                if c == "i" and not negated:
                    raise self.refuse("case-insensitive matching (?i)")
                if c in ("m", "s"):
                    (flags.discard if negated else flags.add)(c)
                seen = True
            elif c == "-" and not negated:
                negated, seen = True, False
            elif c in (":", ")"):
                if negated and not seen:
                    raise self.fail("bad flags group")
                if c == ":":
                    return frozenset(flags)
                self.flags = frozenset(flags)
                return None
            else:
                self.pos -= 1
                raise self.fail(f"bad group syntax (?{c}")

    def char_class(self) -> tuple[tuple[int, int], ...]:
        """After "[": the class's code point ranges, negated for [^...]."""
        negated = self.peek() == "^"
        if negated:
            self.pos += 1
        ranges: list[tuple[int, int]] = []
        first = True
        while first or self.peek() != "]":
            if not self.peek():
                raise self.fail("missing ]")
            first = False
            if self.looking_at("[:") and self.text.find(":]", self.pos + 2) >= 0:
                ranges += self.posix_class()
            elif self.looking_at("\\") and self.next_in("pP", 1):
                raise self.refuse("a Unicode class (\\p, \\P)")
            elif self.looking_at("\\") and self.next_in("dDsSwW", 1):
                ranges += _perl_class(self.peek(1))
                self.pos += 2
            else:
                ranges.append(self.class_range())
        self.pos += 1
        return _negate(ranges) if negated else _normalize(ranges)

    def posix_class(self) -> tuple[tuple[int, int], ...]:
        end = self.text.find(":]", self.pos + 2)
        name = self.text[self.pos + 2 : end]
        negated = name.startswith("^")
        ranges = _POSIX.get(name[1:] if negated else name)
        if ranges is None:
            raise self.fail(f"unknown class [:{name}:]")
        self.pos = end + 2
        return _negate(ranges) if negated else ranges

    def class_range(self) -> tuple[int, int]:
        lo = self.class_char()
        if self.peek() == "-" and self.peek(1) not in ("", "]"):
            self.pos += 1
            hi = self.class_char()
            if hi < lo:
                raise self.fail("bad class range (its end is before its start)")
            return lo, hi
        return lo, lo

    def class_char(self) -> int:
        c = self.take()
        return self.escaped_char() if c == "\\" else ord(c)


def _show(pattern: str) -> str:
    text = repr(pattern)
    return text if len(text) <= 80 else text[:77] + "..."


# ---- Code points to UTF-8 byte ranges (RE2's compiler, re2/compile.cc) -------------------------------------

_LOOSE = (  # U+0080..U+10FFFF as RE2 matches it: lead bytes by length, any continuation bytes
    ((0xC2, 0xDF), (0x80, 0xBF)),
    ((0xE0, 0xEF), (0x80, 0xBF), (0x80, 0xBF)),
    ((0xF0, 0xF4), (0x80, 0xBF), (0x80, 0xBF), (0x80, 0xBF)),
)


def _utf8(code: int) -> bytes:
    """UTF-8 of any code point up to U+10FFFF (surrogates too, as RE2 encodes them)."""
    if code < 0x80:
        return bytes([code])
    if code < 0x800:
        return bytes([0xC0 | code >> 6, 0x80 | code & 0x3F])
    if code < 0x10000:
        return bytes([0xE0 | code >> 12, 0x80 | code >> 6 & 0x3F, 0x80 | code & 0x3F])
    return bytes([0xF0 | code >> 18, 0x80 | code >> 12 & 0x3F, 0x80 | code >> 6 & 0x3F, 0x80 | code & 0x3F])


def _byte_ranges(lo: int, hi: int) -> list[tuple[tuple[int, int], ...]]:
    """Code points lo..hi as byte sequences, each a tuple of (first, last) byte ranges: split where the
    length of the encoding changes, then until all but the leading bytes span whole continuation ranges."""
    if lo == 0x80 and hi == MAX_RUNE:
        return list(_LOOSE)
    for top in (0x7F, 0x7FF, 0xFFFF):
        if lo <= top < hi:
            return _byte_ranges(lo, top) + _byte_ranges(top + 1, hi)
    for i in (1, 2, 3):
        low_bits = (1 << 6 * i) - 1
        if lo & ~low_bits != hi & ~low_bits:
            if lo & low_bits:
                return _byte_ranges(lo, lo | low_bits) + _byte_ranges((lo | low_bits) + 1, hi)
            if hi & low_bits != low_bits:
                return _byte_ranges(lo, (hi & ~low_bits) - 1) + _byte_ranges(hi & ~low_bits, hi)
    return [tuple(zip(_utf8(lo), _utf8(hi)))]


def _mask(first: int, last: int) -> int:
    return ((1 << (last + 1)) - 1) ^ ((1 << first) - 1)


def _byte_sequences(ranges) -> list[tuple[int, ...]]:
    """A class as alternative sequences of byte sets (256-bit ints); sequences that differ only in their
    first set are merged (so all one-byte characters make one set)."""
    merged: dict[tuple[int, ...], int] = {}
    for lo, hi in ranges:
        for seq in _byte_ranges(lo, hi):
            masks = tuple(_mask(a, b) for a, b in seq)
            merged[masks[1:]] = merged.get(masks[1:], 0) | masks[0]
    return [(first, *rest) for rest, first in merged.items()]


# ---- The parsed pattern to a program -------------------------------------------------------------------


class _Emitter:
    """Thompson's construction. Instructions are lists while targets are patched."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.code: list[list[int]] = []

    def push(self, op: int, a: int = 0, b: int = 0) -> list[int]:
        if len(self.code) >= MAX_PROGRAM:
            raise UnsupportedError(
                f"pattern {_show(self.pattern)}: a program of more than {MAX_PROGRAM} instructions (the "
                "pattern is too long or repeats too much) is not supported"
            )
        ins = [op, a, b]
        self.code.append(ins)
        return ins

    def here(self) -> int:
        return len(self.code)

    def emit(self, node: _Node) -> None:
        if node.kind == "chars":
            self.alternatives([functools.partial(self.sets, seq) for seq in _byte_sequences(node.ranges)])
        elif node.kind == "byte":
            self.push(SET, (1 << 256) - 1)
        elif node.kind == "assert":
            self.push(ASSERT, node.arg)
        elif node.kind == "concat":
            for item in node.items:
                self.emit(item)
        elif node.kind == "alt":
            self.alternatives([functools.partial(self.emit, item) for item in node.items])
        else:
            self.repeat(node.items[0], node.lo, node.hi)

    def sets(self, seq: tuple[int, ...]) -> None:
        for mask in seq:
            self.push(SET, mask)

    def alternatives(self, branches) -> None:
        """SPLIT into each branch in turn, each ending in a JMP past the last; none: a set nothing is in."""
        if not branches:
            self.push(SET, 0)
            return
        jumps = []
        for branch in branches[:-1]:
            split = self.push(SPLIT, self.here() + 1)
            branch()
            jumps.append(self.push(JMP))
            split[2] = self.here()
        branches[-1]()
        for jump in jumps:
            jump[1] = self.here()

    def repeat(self, node: _Node, lo: int, hi: int | None) -> None:
        """lo copies (one fewer for x{n,}, whose last copy loops: x+), then x* or hi - lo nested x?."""
        for _ in range(lo - 1 if hi is None and lo > 0 else lo):
            self.emit(node)
        if hi is None and lo > 0:
            start = self.here()
            self.emit(node)
            self.push(SPLIT, start, self.here() + 1)
        elif hi is None:
            start = self.here()
            split = self.push(SPLIT, start + 1)
            self.emit(node)
            self.push(JMP, start)
            split[2] = self.here()
        else:
            splits = []
            for _ in range(hi - lo):
                splits.append(self.push(SPLIT, self.here() + 1))
                self.emit(node)
            for split in splits:
                split[2] = self.here()


@functools.lru_cache(maxsize=64)
def compile_pattern(pattern: str) -> Program:
    """The NFA program of an RE2 pattern (UnsupportedError or ModelError where it cannot be had)."""
    if any("\ud800" <= c <= "\udfff" for c in pattern):
        raise ModelError(f"pattern {_show(pattern)} is not valid UTF-8")
    emitter = _Emitter(pattern)
    emitter.emit(_Parser(pattern).parse())
    emitter.push(MATCH)
    return tuple((op, a, b) for op, a, b in emitter.code)


# ---- Running a program (the reference; the C kernel does the same) --------------------------------------


def _word(byte: int) -> bool:
    return 0 <= byte < 0x80 and (chr(byte).isalnum() or byte == 0x5F)


def _holds(kind: int, prev: int, nxt: int) -> bool:
    """Assertion `kind` between byte `prev` and byte `nxt` (-1: the start / end of the text)."""
    if kind == BEGIN_TEXT:
        return prev < 0
    if kind == END_TEXT:
        return nxt < 0
    if kind == BEGIN_LINE:
        return prev < 0 or prev == 0x0A
    if kind == END_LINE:
        return nxt < 0 or nxt == 0x0A
    return (_word(prev) != _word(nxt)) == (kind == WORD_BOUNDARY)


def _closure(program: Program, starts: list[int], prev: int, nxt: int) -> list[int]:
    """The SET and MATCH instructions reachable from `starts` without consuming a byte, between bytes
    `prev` and `nxt` (for the assertions)."""
    seen, stack, out = set(starts), list(reversed(starts)), []
    while stack:
        pc = stack.pop()
        op, a, b = program[pc]
        if op in (SET, MATCH):
            out.append(pc)
            continue
        follow = (a,) if op == JMP else (a, b) if op == SPLIT else (pc + 1,) if _holds(a, prev, nxt) else ()
        for target in follow:
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return out


def full_match(program: Program, data: bytes) -> bool:
    """Whether the program matches all of `data` (a Pike VM: the set of live threads, byte by byte)."""
    threads = _closure(program, [0], -1, data[0] if data else -1)
    for i, byte in enumerate(data):
        if not threads:
            return False
        moved = [pc + 1 for pc in threads if program[pc][0] == SET and program[pc][1] >> byte & 1]
        threads = _closure(program, moved, byte, data[i + 1] if i + 1 < len(data) else -1)
    return any(program[pc][0] == MATCH for pc in threads)


# ---- The op ------------------------------------------------------------------------------------------


def _program(node) -> Program:
    pattern = node.attr("pattern")
    if pattern is None:
        raise ModelError(f"RegexFullMatch {node.name!r}: the pattern attribute is missing")
    try:
        return compile_pattern(pattern)
    except MlccError as err:
        raise type(err)(f"RegexFullMatch {node.name!r}: {err}") from None


def _words(mask: int) -> list[int]:
    """A 256-bit set as 8 uint32 words, lowest bytes first."""
    return [mask >> (32 * i) & 0xFFFFFFFF for i in range(8)]


@register("RegexFullMatch", since=20)
class RegexFullMatch(OpDef):
    """Y[i]: whether all of X[i] matches the pattern. A C string ends at its first NUL byte, so the
    reference matches only what comes before one too (the C kernel never sees the rest)."""

    strings = True

    def infer(self, node):
        x = need_input(node, 0)
        if x.dtype != STRING:
            raise ModelError(f"RegexFullMatch {node.name!r}: input {x.name!r} is {x.dtype}, not a string tensor")
        _program(node)
        return [(BOOL, x.shape)]

    def reference(self, node, inputs):
        program = _program(node)
        x = inputs[0]
        data = (s.encode("utf-8", "surrogateescape").split(b"\0", 1)[0] for s in x.reshape(-1))
        return [np.array([full_match(program, d) for d in data], dtype=np.bool_).reshape(x.shape)]

    def lower(self, node):
        program = _program(node)
        sets = list(dict.fromkeys(a for op, a, _ in program if op == SET))
        index = {mask: i for i, mask in enumerate(sets)}
        params = {
            "n": node.inputs[0].size,
            "pattern": node.attr("pattern"),
            "ops": [op for op, _, _ in program],
            "args": [index[a] if op == SET else a for op, a, _ in program],
            "alts": [b for _, _, b in program],
            "sets": [_words(mask) for mask in sets],
        }
        return [heap_kernel(Kernel("regex_match", "regex_match", [node.inputs[0]], [node.outputs[0]], params))]
