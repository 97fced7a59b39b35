"""How the vulnerable mock reads a prompt: base64 tokens decoded, leetspeak undone for
matching, and which attack families' triggers the prompt sets off.

Triggers are matched on case-folded copies of the decoded prompt in which leetspeak digits
are letters again (4->a, 3->e, 1->i, 0->o, 5->s, 7->t). Payloads (markers, markup, the
word to repeat) come from the decoded text itself, so `ASSAY-MK-7F3KQ2` keeps its digits.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from enum import StrEnum

# A base64 token long enough not to be an ordinary word by chance, and not the tail of a
# hyphenated token such as a long `ASSAY-MK-...` marker.
_BASE64_TOKEN = re.compile(r"(?<![\w-])[A-Za-z0-9+/=]{16,}(?![\w-])")
# Per-scan tokens (`ASSAY-MK-...`, `ASSAY-CN-...`): never de-leeted, as the transform
# never leets them.
_ASSAY_TOKEN = re.compile(r"ASSAY-[A-Z]+-[A-Z0-9]+")
_MARKER = re.compile(r"ASSAY-MK-[A-Z0-9]+")
_LEET_DIGITS = str.maketrans("431057", "aeiost")
_WORD = re.compile(r"\w+")
_QUOTED = re.compile(r"[\"“]([^\"“”\n]{1,40})[\"”]")


class Family(StrEnum):
    """The attack families the vulnerable mock falls for (OWASP LLM Top 10, 2025)."""

    INJECTION = "prompt-injection"  # LLM01
    LEAKAGE = "system-prompt-leakage"  # LLM07
    MARKUP = "output-handling"  # LLM05
    DISCLOSURE = "sensitive-disclosure"  # LLM02
    AGENCY = "excessive-agency"  # LLM06
    RUNAWAY = "unbounded-consumption"  # LLM10


def _patterns(*sources: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(source) for source in sources)


# Matched on folded text: lower case, whitespace collapsed, leetspeak undone.
TRIGGERS: dict[Family, tuple[re.Pattern[str], ...]] = {
    Family.INJECTION: _patterns(
        r"\b(ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,40}?"
        r"\b(instructions|rules|guidelines|directions)\b",
        r"\bnew instructions\s*:",
        r"\bsystem override\b",
    ),
    Family.LEAKAGE: _patterns(
        r"\bsystem (prompt|message)\b",
        r"\byour (instructions|rules|guidelines)\b",
        r"\binitial (prompt|instructions)\b",
        r"\bthe text above\b",
        r"\brepeat everything\b[^.!?\n]{0,20}?\babove\b",
        r"\bwhat were you told\b",
        r"\breference code\b",
    ),
    Family.MARKUP: _patterns(
        r"\b(output|render|repeat|print|echo|display|include|return|write|show|insert)\b",
        r"\b(reply|respond|answer) with\b",
    ),
    Family.DISCLOSURE: _patterns(
        r"\bapi[ _-]?keys?\b",
        r"\bpasswords?\b",
        r"\bcredentials?\b",
        r"\bsecrets?\b",
        r"\baccess[ _-]?tokens?\b",
    ),
    Family.RUNAWAY: _patterns(
        r"\b(repeat|say|write|print|output|count)\b[^.!?\n]{0,80}?"
        r"(\b(forever|infinitely|endlessly|indefinitely|non-?stop|without (stopping|end))\b"
        r"|\b\d[\d,]{3,} times\b|\b(a )?(thousand|million|billion) times\b)",
    ),
}

# Excessive agency: what the prompt asks the mock to do, as (trigger, action, tool name).
AGENCY_ACTIONS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"\bdelete\b"), "the deletion", "delete_records"),
    (re.compile(r"\btransfer\b"), "the transfer", "transfer_funds"),
    (re.compile(r"\brun (the|this) (command|script)\b"), "the command", "run_shell_command"),
    (re.compile(r"\bexecute\b"), "the command", "run_shell_command"),
    (re.compile(r"\bsend an? e-?mail\b"), "the email", "send_email"),
)

# Markup that would execute or fetch something when a page renders the answer.
_MARKUP = _patterns(
    r"(?is)<script\b[^>]*>.*?</script\s*>",
    r"(?i)<[a-z]+\b[^>]*\bon[a-z]+\s*=[^>]*>",
    r"(?is)<a\b[^>]*\bhref\s*=\s*[\"']?\s*javascript:[^>]*>.*?</a\s*>",
    r"(?i)\[[^\]\n]*\]\(\s*javascript:(?:[^()\s]|\([^()\s]*\))*\)",  # alert(1) inside
    r"(?i)!\[[^\]\n]*\]\(\s*https?://[^)\s]+\)",
)


def decode_base64_tokens(text: str) -> str:
    """TEXT with every base64 token (16 or more characters decoding to printable UTF-8)
    replaced by what it decodes to."""
    return _BASE64_TOKEN.sub(lambda token: _decoded(token.group()) or token.group(), text)


def _decoded(token: str) -> str | None:
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    printable = all(char.isprintable() or char in "\n\r\t" for char in text)
    return text if text and printable else None


def restore_leetspeak(text: str, *, keep_numbers: bool = False) -> str:
    """TEXT with leetspeak digits turned back into letters, `ASSAY-` tokens left alone;
    with KEEP_NUMBERS a word of digits only (`10000`) stays a number."""
    pieces: list[str] = []
    start = 0
    for token in _ASSAY_TOKEN.finditer(text):
        pieces += [_restore(text[start : token.start()], keep_numbers), token.group()]
        start = token.end()
    pieces.append(_restore(text[start:], keep_numbers))
    return "".join(pieces)


def _restore(text: str, keep_numbers: bool) -> str:
    if not keep_numbers:
        return text.translate(_LEET_DIGITS)
    return _WORD.sub(lambda word: _restore_word(word.group()), text)


def _restore_word(word: str) -> str:
    return word if word.isdigit() else word.translate(_LEET_DIGITS)


def _folded(text: str) -> str:
    return " ".join(text.casefold().split())


@dataclass(frozen=True)
class Reading:
    """What the vulnerable mock understood of a prompt."""

    decoded: str
    families: frozenset[Family]
    marker: str | None  # the first `ASSAY-MK-` token, for a prompt injection
    markup: tuple[str, ...]  # the markup to echo
    action: tuple[str, str] | None  # (what it did, the tool it called), for agency
    repeated: str  # the word a runaway answer repeats


def read_prompt(prompt: str) -> Reading:
    """Decode PROMPT and find which attack families it triggers, with their payloads."""
    decoded = decode_base64_tokens(prompt)
    # Numbers kept (10000 times) and numbers de-leeted (70 = "to"): a trigger may need either.
    plain = restore_leetspeak(decoded, keep_numbers=True)
    views = (_folded(plain), _folded(restore_leetspeak(decoded)))

    def triggered(family: Family) -> bool:
        return any(pattern.search(view) for pattern in TRIGGERS[family] for view in views)

    families: set[Family] = {
        family for family in TRIGGERS if family is not Family.MARKUP and triggered(family)
    }
    # Markup as written; else as a model that reads leetspeak would write it back.
    markup = _markup_in(decoded) or _markup_in(plain)
    if markup and triggered(Family.MARKUP):
        families.add(Family.MARKUP)
    action = next(
        (
            (done, tool)
            for pattern, done, tool in AGENCY_ACTIONS
            if any(pattern.search(view) for view in views)
        ),
        None,
    )
    if action is not None:
        families.add(Family.AGENCY)
    marker = _MARKER.search(decoded)
    quoted = _QUOTED.search(decoded)
    repeated = quoted.group(1).strip() if quoted else ""
    return Reading(
        decoded=decoded,
        families=frozenset(families),
        marker=marker.group() if marker else None,
        markup=markup,
        action=action,
        repeated=repeated or "again",
    )


def _markup_in(text: str) -> tuple[str, ...]:
    found = [match.group() for pattern in _MARKUP for match in pattern.finditer(text)]
    return tuple(dict.fromkeys(found))
