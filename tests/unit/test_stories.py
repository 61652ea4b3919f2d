"""Proactive test stories (addons.checks): the shipped ones pass, a wrong one fails with a diff
that names what differs, a malformed file is reported (never raised), and the CLI's exit status."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import autoplay_sdk.agent_state.v2.session_state as sdk_session_state
import pytest

import addons.offers.gate
from addons.checks.story_file import load_story_file
from addons.checks.stories import StoryResult, run_paths, run_story
from addons.config import ProactiveConfig
from addons.offers.engine import ProactiveEngine

RASA_BOT = Path(__file__).resolve().parents[2] / "rasa-bot"
SHIPPED = RASA_BOT / "proactive_tests"
# Indented as the steps of the stories below, which are dedented once whole.
TWO_SAVES = """
              - pageview: /projects
              - click: Save changes
                at: 10
              - click: Save changes
                at: 20"""


def write_stories(tmp_path: Path, text: str, name: str = "stories.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def play_one(config: ProactiveConfig, tmp_path: Path, text: str) -> StoryResult:
    (story,) = load_story_file(write_stories(tmp_path, text))
    return run_story(story, config)


def test_the_shipped_stories_pass(config):
    run = run_paths([SHIPPED], config)
    assert run.errors == ()
    assert len(run.results) >= 9
    failures = {r.story.name: r.diff() for r in run.results if not r.passed}
    assert failures == {}


def test_a_holdout_does_not_change_what_a_story_expects(config):
    everyone_held_out = replace(config, triggers=tuple(replace(t, holdout_pct=100.0) for t in config.triggers))
    run = run_paths([SHIPPED / "bulk_edit.yml"], everyone_held_out)
    assert run.results and all(r.passed for r in run.results), [r.diff() for r in run.results if not r.passed]


def test_an_expected_offer_that_does_not_fire_fails_with_the_reason(config, tmp_path):
    result = play_one(config, tmp_path, f"""
        stories:
          - story: two saves fire (wrong)
            steps:{TWO_SAVES}
            expect:
              offer: bulk_edit_opportunity
              tours: [bulk_edit_tour]
        """)
    assert not result.passed
    diff = result.diff()
    assert diff[:2] == ["--- expected", "+++ actual"]
    assert ["- offers: bulk_edit_opportunity", "+ offers: none"] == diff[2:4]
    assert ["- tours: bulk_edit_tour", "+ tours: no offer"] == diff[4:6]
    assert "  bulk_edit_opportunity: 2 of 3 'save changes' actions on /projects within the last 120 s" in diff


def test_an_unexpected_offer_fails_with_the_offer_and_the_actual_reason(config, tmp_path):
    result = play_one(config, tmp_path, f"""
        stories:
          - story: three saves do not (wrong)
            steps:{TWO_SAVES}
              - click: Save changes
                at: 30
            expect:
              no_offer: "2 of 3 'save changes' actions on /projects within the last 120 s"
        """)
    assert not result.passed
    diff = result.diff()
    assert ["- offers: none", "+ offers: bulk_edit_opportunity", "  offered at: 30 s"] == diff[2:5]
    assert "- bulk_edit_opportunity: 2 of 3 'save changes' actions on /projects within the last 120 s" in diff
    assert "+ bulk_edit_opportunity: 0 of 3 'save changes' actions on /projects within the last 120 s since its last offer" in diff


def test_a_wrong_reason_alone_fails(config, tmp_path):
    result = play_one(config, tmp_path, f"""
        stories:
          - story: the reason is compared exactly
            steps:{TWO_SAVES}
            expect:
              no_offer: {{trigger: bulk_edit_opportunity, reason: "2 of 3 saves"}}
        """)
    assert result.diff()[2:] == [
        "  offers: none",
        "- bulk_edit_opportunity: 2 of 3 saves",
        "+ bulk_edit_opportunity: 2 of 3 'save changes' actions on /projects within the last 120 s",
    ]


def test_chat_holds_the_offer_back_and_the_gate_says_why(config, tmp_path):
    story = """
        stories:
          - story: a chat message holds the offer back
            user: u-chat
            session: s-chat
            steps:
              - pageview: /projects
              - chat: how do I edit several projects at once
                at: 2
              - click: Save changes
                at: 3
              - click: Save changes
                at: 4
              - click: Save changes
                at: 5
            expect:
              no_offer: "3 repeats within 120 s"
        """
    assert play_one(config, tmp_path, story).passed
    wrong = play_one(config, tmp_path, story.replace('no_offer: "3 repeats within 120 s"', "offer: bulk_edit_opportunity"))
    assert "  gate: closed: v2_state_reactive_assistance" in wrong.diff()


def test_a_tour_and_a_wait_do_not_bring_the_same_offer_back(config, tmp_path):
    result = play_one(config, tmp_path, f"""
        stories:
          - story: one offer for the same three saves
            steps:{TWO_SAVES}
              - click: Save changes
                at: 30
              - tour_start: bulk_edit_tour
                at: 32
              - tour_end: bulk_edit_tour
                at: 40
              - wait: 300
            expect:
              offer: bulk_edit_opportunity
              tours: [bulk_edit_tour]
        """)
    assert result.passed, result.diff()


def test_submitted_forms_are_labelled_by_their_name(config, tmp_path):
    result = play_one(config, tmp_path, """
        stories:
          - story: three submitted "Save changes" forms fire
            steps:
              - pageview: /projects
              - submit: Save changes
                at: 10
              - submit: Save changes
                at: 20
              - submit: Save changes
                at: 30
            expect:
              offer: bulk_edit_opportunity
        """)
    assert result.passed, result.diff()


def test_a_step_the_engine_refuses_stops_the_story(config, tmp_path):
    result = play_one(config, tmp_path, """
        stories:
          - story: a tour ends that never started
            steps:
              - pageview: /projects
              - tour_end:
                at: 3
            expect:
              no_offer: "0 of 3 'save changes' actions on /projects within the last 120 s"
        """)
    assert not result.passed
    assert result.refused_step == "line 5: no tour is running for user 'user-1'"


@pytest.mark.parametrize(
    ("steps", "expect", "message"),
    [
        ("      - clik: Save changes\n", "offer: bulk_edit_opportunity", ":4: story 'broken': a step is a mapping with exactly one of"),
        ("      - click: Save changes\n", "offer: bulk_edit_opportunity", ":4: story 'broken': this click has no page"),
        (
            "      - pageview: /projects\n        at: 10\n      - click: Save changes\n        at: 5\n",
            "offer: bulk_edit_opportunity",
            ":6: story 'broken': reaches the server at 5 s, before the previous step did (10 s)",
        ),
        ("      - pageview: /projects\n        timestamp: unix\n", "offer: bulk_edit_opportunity", ":4: story 'broken': `timestamp:` is one of iso, epoch"),
        ("      - pageview: /projects\n", "offer: bulk_edit_opportunity\n      no_offer: x", ":5: story 'broken': `expect:` holds either"),
        ("      - pageview: [/projects\n", "offer: x", ":5: not valid YAML"),
        ("      - pageview: /projects\n", "offer: no_such_trigger", ":2: story 'broken': unknown trigger 'no_such_trigger'"),
    ],
)
def test_a_malformed_story_is_reported_with_file_and_line_not_raised(config, tmp_path, steps, expect, message):
    path = write_stories(tmp_path, f"stories:\n  - story: broken\n    steps:\n{steps}    expect:\n      {expect}\n")
    run = run_paths([path], config)
    assert not run.ok
    assert run.results == ()
    (error,) = run.errors
    assert error.startswith(f"{path}{message}"), error


def test_the_monotonic_clock_is_restored_even_when_a_story_raises(config, monkeypatch):
    def broken_tick(self, *, now=None):
        raise RuntimeError("tick failed")

    monkeypatch.setattr(ProactiveEngine, "tick", broken_tick)
    story = load_story_file(SHIPPED / "bulk_edit.yml")[0]
    with pytest.raises(RuntimeError, match="tick failed"):
        run_story(story, config)
    assert sdk_session_state.time is time
    assert addons.offers.gate.time is time


def test_the_cli_exits_non_zero_on_a_failing_story_and_on_a_malformed_file(tmp_path):
    wrong = write_stories(tmp_path, f"""
        stories:
          - story: two saves fire (wrong)
            steps:{TWO_SAVES}
            expect:
              offer: bulk_edit_opportunity
        """, "wrong.yml")
    malformed = write_stories(tmp_path, "stories: [\n", "malformed.yml")
    cli = [sys.executable, "-m", "addons.checks", "stories"]
    passing = subprocess.run(cli, cwd=RASA_BOT, capture_output=True, text=True, timeout=120)
    failing = subprocess.run([*cli, str(wrong), str(malformed)], cwd=RASA_BOT, capture_output=True, text=True, timeout=120)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert any(line.startswith("PASS  proactive_tests/bulk_edit.yml:") for line in passing.stdout.splitlines())
    assert failing.returncode == 1
    assert f"FAIL  {wrong}:2  two saves fire (wrong)" in failing.stdout
    assert "      + offers: none" in failing.stdout
    assert f"ERROR {malformed}:2: not valid YAML" in failing.stdout
    assert failing.stdout.splitlines()[-1] == "1 stories: 0 passed, 1 failed; 1 could not be played"
    assert "Traceback" not in failing.stderr


def test_a_hundred_stories_time(config):
    """Prints the time of 100 stories (the shipped ones, repeated); timing is not asserted."""
    shipped = load_story_file(SHIPPED / "bulk_edit.yml")
    stories = [shipped[i % len(shipped)] for i in range(100)]
    started = time.perf_counter()
    results = [run_story(story, config) for story in stories]
    print(f"100 proactive test stories in {time.perf_counter() - started:.3f} s")
    assert all(r.passed for r in results)
