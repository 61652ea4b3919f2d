"""python -m adopt BOT_DIR: add the proactive copilot to the Rasa bot in BOT_DIR."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

from adopt.adoption import AdoptionError, adopt

NEXT_STEPS = """\
What to check next:
  1. Set PROACTIVE_IDENTITY_SECRET (a long random string) for `rasa run` and for your app's server.
  2. Write your first trigger in proactive.yml (an example is there, commented out), and your
     PostHog project key under ingest.project_keys.
  3. rasa train, then rasa run --cors "https://your.app" (the copilot's routes are under
     /webhooks/proactive; GET /webhooks/proactive/health says whether it is up).
  4. In your web app, mount what app/copilot/ holds (its README says how)."""


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adopt", description=__doc__)
    parser.add_argument("bot", type=Path, help="the Rasa project folder (with config.yml and domain.yml)")
    parser.add_argument("--no-validate", action="store_true", help="skip `rasa data validate` afterwards")
    args = parser.parse_args(argv)
    started = time.monotonic()
    print(f"Adding the proactive copilot to {args.bot.resolve()}")
    try:
        changes = adopt(args.bot, validate=not args.no_validate)
    except AdoptionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Done in {time.monotonic() - started:.1f} s.")
    if changes:
        print(NEXT_STEPS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
