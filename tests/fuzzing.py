"""What the fuzz tests share: how many examples, and the count of outcomes per target (docs/figures.md's).

FUZZ_EXAMPLES sets the examples per target: 50 in the quick suite, 200 in CI
(--config=ci); a long run is made by hand with a larger number (docs/reliability.md, docs/figures.md).
"""

import collections
import os

from hypothesis import HealthCheck, settings

from ssd_tflite.errors import UserError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
OUTCOMES: collections.Counter = collections.Counter()  # (target, outcome: ok or error class)


def outcome(target: str, action) -> object:
    """Runs `action`; records ok or the UserError raised. Anything else fails the test."""
    try:
        result = action()
    except UserError as error:
        OUTCOMES[target, type(error).__name__] += 1
        return error
    OUTCOMES[target, "ok"] += 1
    return result
