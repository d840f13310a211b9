"""The one Jinja environment, the escaping functions every untrusted string goes through, and C names."""

from __future__ import annotations

import re

import jinja2

from ..errors import InternalError
from ..paths import templates_dir

_SAFE_STRING_CHARS = set(" !#%&'()*+,-./0123456789:;<=>@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~")
_COMMENT_LIMIT = 160
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _to_bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")


def c_string(text: str | bytes) -> str:
    """A C string literal holding exactly the bytes of `text`; printable ASCII kept, all else octal-escaped."""
    out = []
    for byte in _to_bytes(text):
        ch = chr(byte)
        out.append(ch if ch in _SAFE_STRING_CHARS else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def c_comment(text: str | bytes) -> str:
    """`text` made safe inside a /* */ comment and on one line: printable ASCII, no comment delimiters,
    no trigraphs, no line splices; other bytes as \\xNN; long strings cut with '...'."""
    out = []
    for byte in _to_bytes(text):
        ch = chr(byte)
        out.append(ch if ch in _SAFE_STRING_CHARS or ch in '"\\' else f"\\x{byte:02x}")
    s = "".join(out).replace("*/", "*\\/").replace("/*", "/\\*").replace("??", "?\\?")
    if s.endswith("\\"):
        s += " "
    return s if len(s) <= _COMMENT_LIMIT else s[: _COMMENT_LIMIT - 3] + "..."


def c_identifier(text: str) -> str:
    """`text` if it is already a plain C identifier; used only for names mlcc itself chose (prefixes)."""
    if not _IDENT.match(text):
        raise InternalError(f"{text!r} is not a C identifier")
    return text


def make_env(target: str) -> jinja2.Environment:
    """The template environment of a target: StrictUndefined, escaping filters, no autoescape (C, not HTML)."""
    env = jinja2.Environment(
        # A target's own templates first, then the C ones it shares (weights.S, header comment).
        loader=jinja2.FileSystemLoader([str(templates_dir() / target), str(templates_dir() / "c")]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["c_string"] = c_string
    env.filters["c_comment"] = c_comment
    return env


def render(env: jinja2.Environment, template: str, **params: object) -> str:
    """Render `template`, turning template errors into InternalError that names the template and line."""
    try:
        return env.get_template(template).render(**params)
    except jinja2.TemplateSyntaxError as err:
        raise InternalError(f"template {err.filename or template}:{err.lineno}: {err.message}") from None
    except jinja2.TemplateError as err:
        raise InternalError(f"template {template}: {err}") from None


class IndentedBuffer:
    """Glue code that is not a template: lines with managed indentation."""

    def __init__(self, indent: str = "  ") -> None:
        self._lines: list[str] = []
        self._level = 0
        self._indent = indent

    def line(self, text: str = "") -> None:
        self._lines.append(self._indent * self._level + text if text else "")

    def __enter__(self) -> IndentedBuffer:
        self._level += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._level -= 1

    def getvalue(self) -> str:
        return "\n".join(self._lines) + ("\n" if self._lines else "")
