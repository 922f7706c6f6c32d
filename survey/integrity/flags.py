"""The integrity flags of a response (``Response.flags``), defined in one place.

Bits 0-7 say why a response is suspect, bits 8-9 what an officer decided. Headline indices, quota
counts and comments count a response whose flags are 0 or exactly ``REVIEWED_OK`` (``HEADLINE``): a
response an officer cleared counts again; one with any suspicion left, or confirmed, does not. Only an
account above the response's unit may decide (``survey.integrity.review``).
"""

from __future__ import annotations

from enum import IntFlag

from survey.i18n import N_


class Flag(IntFlag):
    # set when the response is stored (survey.citizen)
    HONEYPOT = 1  # the hidden field a person never sees was filled in
    TOO_FAST = 2  # sent sooner after the page was opened than a person can read the questions
    REPEAT_DEVICE = 4  # a second counter rating from the same device at the same counter on the same day
    # set by a scan of the wave (survey.integrity.services)
    BURST = 8  # one of many responses in a few time buckets, far above the point's usual rate
    OFF_HOURS = 16  # sent outside the service point's opening hours
    REPEATED_PATTERN = 32  # the same full answer vector many times at one point within a short window
    STRAIGHT_LINE = 64  # ... and that repeated vector gives every criterion the same answer (all 5s)
    OVER_ISSUED = 128  # a receipt response of a stratum issued more codes than its frame has transactions
    # set by an officer's review (survey.integrity.review.review)
    CONFIRMED = 256  # an officer looked and agrees it is not a genuine rating
    REVIEWED_OK = 512  # an officer looked and found it genuine: a rescan leaves it alone


AT_SUBMISSION = Flag.HONEYPOT | Flag.TOO_FAST | Flag.REPEAT_DEVICE
FROM_SCAN = Flag.BURST | Flag.OFF_HOURS | Flag.REPEATED_PATTERN | Flag.STRAIGHT_LINE | Flag.OVER_ISSUED
SUSPICIOUS = AT_SUBMISSION | FROM_SCAN
DECISIONS = Flag.CONFIRMED | Flag.REVIEWED_OK

REASONS: dict[Flag, str] = {
    Flag.HONEYPOT: N_("Hidden field filled in"),
    Flag.TOO_FAST: N_("Sent too fast"),
    Flag.REPEAT_DEVICE: N_("Same device, same counter, same day"),
    Flag.BURST: N_("Burst of responses"),
    Flag.OFF_HOURS: N_("Outside opening hours"),
    Flag.REPEATED_PATTERN: N_("Identical answers repeated"),
    Flag.STRAIGHT_LINE: N_("Same answer to every question"),
    Flag.OVER_ISSUED: N_("More receipt codes issued than transactions"),
}


def reasons(flags: int) -> list[Flag]:
    """The suspicion bits set in ``flags``, in bit order."""
    return [bit for bit in REASONS if flags & bit]


HEADLINE = (0, int(Flag.REVIEWED_OK))  # the flag values that count in headline indices


CHANNEL_LABELS: dict[str, str] = {
    "receipt": N_("Receipt code"),
    "counter": N_("Counter QR code"),
    "kiosk": N_("Kiosk"),
    "paper": N_("Paper form"),
}
