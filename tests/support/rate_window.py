"""Keep a test that counts requests against a limit inside one rate-limit window.

The sliding-window counters are aligned to the clock (minute, hour and day windows all
turn over on a minute boundary). A test that crosses one mid-count sees the previous
window's weight fall just below a whole request and is admitted once more than it
counted: the limiter is right, the test's arithmetic is not. Waiting out the last
seconds of a minute before counting removes that case instead of retrying it.
"""

from __future__ import annotations

import time

# Longer than any counting stretch in the suite takes, even on a loaded machine.
MARGIN_SECONDS = 6.0


def wait_for_steady_rate_window(margin: float = MARGIN_SECONDS) -> None:
    seconds_into_minute = time.time() % 60
    if seconds_into_minute > 60 - margin:
        time.sleep(60 - seconds_into_minute + 0.05)
