"""Reading defanged indicators back: `hxxp://evil[.]example` -> `http://evil.example`.

ioc-fanger (MIT, no network access) does most of the work: bracketed dots, colons and
at-signs, `[dot]`/`(dot)`, `[://]`, lower-case `hxxp`/`hXXp`. The few forms it leaves
are handled here first, each with its reason. ADR 0020 says why this library.
"""

from __future__ import annotations

import re

from ioc_fanger import fang

# Zero-width characters: pasted from chat and documents, or inserted to defang.
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
# ioc-fanger reads `hxxp` only with a lower-case h; reports also write HXXP and h**p.
_HTTP_SCHEME = re.compile(r"^\s*h(?:xx|\*\*)p(s?)(?=\s*(?:\[|\(|\{)?\s*:)", re.IGNORECASE)
# ... and does not read `fxp` for ftp at all.
_FTP_SCHEME = re.compile(r"^\s*fxp(?=\s*(?:\[|\(|\{)?\s*:)", re.IGNORECASE)
# A spelled-out dot between spaces (`example dot com`); ioc-fanger reads only DOT so.
_SPACED_DOT = re.compile(r"\s+dot\s+", re.IGNORECASE)
# A bracketed slash, `[/]`, which ioc-fanger leaves.
_BRACKETED_SLASH = re.compile(r"[\[({]/[\])}]")
# ioc-fanger turns a caret and the character after it into a dot (its `^.` rule reads
# any character), which would damage URL paths and email local parts: a caret is
# stood in for by a private-use character the input cannot hold (service refuses it).
CARET_STAND_IN = "\ue000"
# ioc-fanger rewrites one layer of brackets per pass (`x[[.]]y` -> `x[.]y`): a few
# passes reach the fixed point, so that canonical output reads as itself.
_MAX_PASSES = 4


def refang(text: str) -> str:
    """`text` with defanging undone and every whitespace character removed."""
    text = text.translate(_ZERO_WIDTH)
    text = _HTTP_SCHEME.sub(r"http\1", text)
    text = _FTP_SCHEME.sub("ftp", text)
    text = _SPACED_DOT.sub(".", text)
    text = _BRACKETED_SLASH.sub("/", text)
    text = text.replace("^", CARET_STAND_IN)
    for _ in range(_MAX_PASSES):
        fanged: str = fang(text)
        if fanged == text:
            break
        text = fanged
    text = text.replace(CARET_STAND_IN, "^")
    # An indicator never holds whitespace; reports break them with spaces and newlines.
    return "".join(text.split())
