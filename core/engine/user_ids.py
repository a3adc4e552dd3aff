"""What a feedback user id may be: one spelling per name that prints, and nothing that prints as another.

Feedback calls and a generator's ``preference`` name users the same way, so both check here.
An id is normalised to NFC first: "Zoë" typed as o + combining diaeresis (NFD) is the same user
as "Zoë" with its precomposed ë, not a second one that prints the same.
"""

from __future__ import annotations

import re
import unicodedata

MAX_USER_CHARS = 128
# C0 and C1 controls (NEL included), line and paragraph separators, the bidirectional marks,
# overrides and isolates, and the invisible characters that make a stored name print as another
# ("ann\u200b" as "ann"): zero-width space, word joiner and the invisible operators, soft hyphen,
# byte-order mark, the Hangul fillers ("ann\u3164"), the combining grapheme joiner, the Arabic
# letter mark, Khmer's inherent vowels, Mongolian's vowel separator and free variation selectors,
# the deprecated format characters, the shorthand and musical format controls. The joiners emoji
# and some scripts need (U+200C, U+200D), variation selectors and tags (flags) are fine.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
                     "\u200b\u200e\u200f\u2028\u2029\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0"
                     "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a]")


def normal_user(user: str) -> str:
    """The one spelling of ``user`` that is stored and looked up (NFC)."""
    return unicodedata.normalize("NFC", user)


def user_problem(user: str) -> str:
    """What is wrong with a (non-empty) user id, in words ('' when nothing is); check it normalised."""
    if len(user) > MAX_USER_CHARS:
        return f"is {len(user)} characters long; at most {MAX_USER_CHARS}"
    if CONTROL.search(user) or user != user.strip():
        return "must not hold control or invisible characters or start or end with spaces"
    if unicodedata.category(user[0]).startswith("M"):  # it would sit on whatever printed before it
        return "must not start with a combining mark (an accent with no letter under it)"
    return ""
