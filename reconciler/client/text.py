"""Whatever text the server sends, made safe to show, and the numbers our messages quote.

A hostile or broken host may answer with ANSI escapes, bidi overrides or a whole HTML page;
:func:`sanitize` is the one place such text is made fit for one terminal line before it can
reach an error message.
"""

from __future__ import annotations

import html
import itertools
import re

import httpx

_MIB = 1024 * 1024
_EXCERPT_BYTES = 64 * 1024  # what is read of an error answer, and shown of a bad one

_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erase
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]?"  # any other escape
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_BIDI_AND_INVISIBLE = (
    "\u061c\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)


def _control_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for code in itertools.chain(range(0x00, 0x20), range(0x7F, 0xA0)):
        table[code] = " " if chr(code) in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85" else None
    for char in _BIDI_AND_INVISIBLE:
        table[ord(char)] = None
    for code in range(0xD800, 0xE000):  # lone surrogates cannot be printed
        table[code] = "\ufffd"
    table[0x2028] = table[0x2029] = " "
    return table


_CONTROLS = _control_table()


def sanitize(text: str, limit: int = 200) -> str:
    """Server-provided text made safe for one terminal line.

    ANSI escapes, control and bidi characters are removed, whitespace (newlines included) is
    folded to single spaces, and the result is cut to at most ``limit`` characters (``…``
    marks a cut).
    """
    limit = max(1, limit)
    text = str(text)[: max(limit * 8, 4096)]
    text = _ANSI.sub("", text).translate(_CONTROLS)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _html_text(text: str) -> str:
    """An HTML page's ``<title>``, else its text without tags, scripts and styles."""
    lower = text.lower()
    start = lower.find("<title")
    if start >= 0:
        opened = lower.find(">", start)
        closed = lower.find("</title", opened) if opened >= 0 else -1
        if 0 <= opened < closed:
            title = " ".join(html.unescape(text[opened + 1 : closed]).split())
            if title:
                return title
    kept: list[str] = []
    position = 0
    while True:
        starts = [(lower.find(opener, position), closer)
                  for opener, closer in (("<script", "</script"), ("<style", "</style"),
                                         ("<!--", "-->"))]
        found = [(at, closer) for at, closer in starts if at >= 0]
        if not found:
            kept.append(text[position:])
            break
        at, closer = min(found)
        kept.append(text[position:at])
        end = lower.find(closer, at)
        if end < 0:
            break
        after = lower.find(">", end + len(closer) - 1)
        position = after + 1 if after >= 0 else len(text)
    stripped = re.sub(r"<[^<>]*>", " ", "".join(kept))
    return html.unescape(stripped)


def _body_text(headers: httpx.Headers, body: bytes | bytearray) -> str:
    """A short, sanitized excerpt of a body that is not the spec's JSON."""
    sample = body[:_EXCERPT_BYTES]
    charset = _charset(headers)
    try:
        text = sample.decode(charset, errors="replace")
    except LookupError:
        text = sample.decode("utf-8", errors="replace")
    content_type = headers.get("content-type", "").lower()
    if "html" in content_type or text.lstrip().startswith("<"):
        text = _html_text(text)
    return sanitize(text)


def _charset(headers: httpx.Headers) -> str:
    content_type: str = headers.get("content-type", "")
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')[:40]
    return "utf-8"


def _format_bytes(count: int) -> str:
    if count >= _MIB and count % _MIB == 0:
        return f"{count // _MIB} MiB"
    if count >= 1024 and count % 1024 == 0:
        return f"{count // 1024} KiB"
    return f"{count} bytes"


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.3g}"
