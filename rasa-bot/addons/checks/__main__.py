"""The checks a team runs in CI, from ``rasa-bot/``:

* ``python -m addons.checks stories [PATH ...] [--config proactive.yml]`` plays the proactive
  test stories: one line per story (and the diff of each that fails), then a summary. Exit
  status: 0 when every story passes, 1 when one fails or a story file cannot be played, 2 when
  the config cannot be read.
* ``python -m addons.checks validate [PATH]`` reports every problem of a proactive.yml at
  file:line; exit status 1 if there is any.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from addons.checks import validate
from addons.checks.stories import StoryRun, run_paths
from addons.config import ConfigError, load_config

DEFAULT_STORIES = Path("proactive_tests")
DEFAULT_CONFIG = Path("proactive.yml")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m addons.checks", description=__doc__.split("\n\n", 1)[1])
    commands = parser.add_subparsers(dest="command", required=True)
    stories = commands.add_parser("stories", help="play the proactive test stories against proactive.yml")
    stories.add_argument("paths", nargs="*", type=Path, default=[DEFAULT_STORIES],
                         help=f"story files or directories of them (default: {DEFAULT_STORIES})")
    stories.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help=f"default: {DEFAULT_CONFIG}")
    check = commands.add_parser("validate", help="report every problem of a proactive.yml, at file:line")
    check.add_argument("path", nargs="?", default=validate.DEFAULT_PATH)
    args = parser.parse_args(argv)
    if args.command == "validate":
        return validate.main([str(args.path)])
    # The SDK logs every state transition at WARNING (the channel silences it the same way).
    logging.getLogger("autoplay_sdk.agent_state.v2.session_state").setLevel(logging.ERROR)
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    run = run_paths(args.paths, config)
    report(run)
    return 0 if run.ok else 1


def report(run: StoryRun) -> None:
    for result in run.results:
        print(f"{'PASS' if result.passed else 'FAIL'}  {result.story.location}  {result.story.name}")
        for line in result.diff():
            print(f"      {line}")
    for error in run.errors:
        print(f"ERROR {error}")
    failed = sum(not r.passed for r in run.results)
    summary = f"{len(run.results)} stories: {len(run.results) - failed} passed, {failed} failed"
    if run.errors:
        summary += f"; {len(run.errors)} could not be played"
    print(summary)


if __name__ == "__main__":
    sys.exit(main())
