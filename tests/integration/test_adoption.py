"""`make adopt`: the copilot added to the bot `rasa init` makes, as a Rasa team would do it,
then that bot trained and run through the reference story."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, Tuple

import httpx
import pytest

from addons.config import load_config
from clients import IDENTITY_SECRET, ChatClient, ToastStream, inject, three_saves
from rasa_server import BOT, RASA, ROOT, RasaServer, start_rasa

spec = importlib.util.find_spec("rasa")
assert spec is not None and spec.submodule_search_locations
RASA_INIT = Path(list(spec.submodule_search_locations)[0]) / "cli" / "initial_project"
TEAM_FILES = ("config.yml", "endpoints.yml", "data/nlu.yml", "data/rules.yml", "data/stories.yml",
              "actions/actions.py", "actions/__init__.py", "tests/test_stories.yml")


def _rasa_init(where: Path) -> Path:
    """The files `rasa init` writes (the template inside the installed rasa package)."""
    shutil.copytree(RASA_INIT, where, ignore=shutil.ignore_patterns("__pycache__"))
    return where


def _adopt(bot: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "adopt", str(bot)], cwd=ROOT, capture_output=True, text=True, timeout=300)


def _snapshot(bot: Path) -> Dict[str, str]:
    return {
        str(p.relative_to(bot)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(bot.rglob("*")) if p.is_file() and "__pycache__" not in p.parts and ".rasa" not in p.parts
    }


@pytest.fixture(scope="module")
def adopted(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, str, float]:
    bot = _rasa_init(tmp_path_factory.mktemp("team") / "my-bot")
    started = time.monotonic()
    result = _adopt(bot)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    return bot, result.stdout, took


def test_one_command_adds_the_copilot_says_what_it_changed_and_validates(adopted):
    bot, out, took = adopted
    print(f"\nadoption into a fresh `rasa init` bot: {took:.1f} s")
    assert re.search(r"addons/: \d+ files created", out)
    assert "channels/: 3 files created" in out and "proactive_actions/: 3 files created" in out
    assert "data/copilot.yml: created" in out
    assert ("domain.yml: added intent ask_help, intent EXTERNAL_proactive, entity proactive_text, "
            "action action_send_proactive, action action_grounded_reply, slot proactive_text") in out
    assert ("credentials.yml: added channels.socketio.ProactiveSocketIOInput, "
            "channels.proactive.ProactiveInput") in out
    assert "proactive.yml: written with production defaults" in out
    assert "rasa data validate: passed" in out


def test_the_teams_own_files_keep_every_byte(adopted):
    bot, _, _ = adopted
    for name in TEAM_FILES:
        assert (bot / name).read_bytes() == (RASA_INIT / name).read_bytes(), name
    # domain.yml and credentials.yml only gained lines: the team's are all there, in order.
    for name in ("domain.yml", "credentials.yml"):
        lines = iter((bot / name).read_text().splitlines())
        assert all(line in lines for line in (RASA_INIT / name).read_text().splitlines()), name


def test_the_written_config_has_the_production_defaults(adopted):
    bot, _, _ = adopted
    config = load_config(bot / "proactive.yml")
    assert (config.session.interaction_timeout_s, config.session.cooldown_period_s) == (60, 120)
    assert (config.caps.per_user_per_day, config.caps.per_session_per_hour, config.caps.min_gap_s) == (3, 2, 600)
    assert config.identity.secret is None and config.identity.required and not config.identity.debug_route
    assert config.triggers == () and config.product_id == "my-bot"


def test_adopting_twice_changes_nothing(adopted):
    bot, _, _ = adopted
    before = _snapshot(bot)
    again = _adopt(bot)
    assert again.returncode == 0, again.stderr
    assert "nothing to change" in again.stdout
    assert _snapshot(bot) == before


def test_a_file_of_the_teams_where_ours_goes_stops_it_before_any_change(tmp_path):
    bot = _rasa_init(tmp_path / "bot")
    (bot / "channels").mkdir()
    (bot / "channels" / "proactive.py").write_text("# the team's own channel\n")
    before = _snapshot(bot)
    result = _adopt(bot)
    assert result.returncode == 1
    assert "channels/proactive.py exists and is not the copilot's" in result.stderr
    assert _snapshot(bot) == before


def test_a_later_run_updates_untouched_copies_and_keeps_edited_ones(tmp_path):
    bot = _rasa_init(tmp_path / "bot")
    assert _adopt(bot).returncode == 0
    manifest_path = bot / ".proactive-copilot.json"
    manifest = json.loads(manifest_path.read_text())
    older = b'"""An older release of this module."""\n'  # as if an earlier version had been copied
    (bot / "addons" / "urls.py").write_bytes(older)
    manifest["files"]["addons/urls.py"] = hashlib.sha256(older).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    gone = b'"""A module an earlier release shipped."""\n'
    (bot / "addons" / "retired.py").write_bytes(gone)
    manifest["files"]["addons/retired.py"] = hashlib.sha256(gone).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    edited = (bot / "addons" / "bounded.py").read_text() + "# tuned by the team\n"
    (bot / "addons" / "bounded.py").write_text(edited)
    result = _adopt(bot)
    assert result.returncode == 0, result.stderr
    assert "addons/urls.py: updated" in result.stdout
    assert "addons/bounded.py: edited since it was copied; left as it is" in result.stdout
    assert "addons/retired.py: removed (no longer part of the copilot)" in result.stdout
    assert not (bot / "addons" / "retired.py").exists()
    assert (bot / "addons" / "urls.py").read_bytes() == (BOT / "addons" / "urls.py").read_bytes()
    assert (bot / "addons" / "bounded.py").read_text() == edited


@pytest.fixture(scope="module")
def adopted_server(adopted, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaServer]:
    """The adopted bot as its team would run it: the light pipeline (training in seconds), the
    example trigger switched on (with the UI names it quotes), the secret in the environment,
    `rasa train`, `rasa run`."""
    bot, _, _ = adopted
    shutil.copy(BOT / "config.yml", bot / "config.yml")
    head, example = (bot / "proactive.yml").read_text().split("triggers: []\n# triggers:\n")
    head = head.replace("  # ui_vocabulary:", "  ui_vocabulary:")  # the names the example's how_to quotes
    (bot / "proactive.yml").write_text(head + "triggers:\n" + re.sub(r"(?m)^# ", "", example))
    train = subprocess.run([str(RASA), "train", "--fixed-model-name", "adopted", "--out", "models", "--quiet"],
                           cwd=bot, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    server = start_rasa(
        tmp_path_factory.mktemp("adopted-run"), bot=bot, model=bot / "models" / "adopted.tar.gz",
        env={"PROACTIVE_IDENTITY_SECRET": IDENTITY_SECRET},
    )
    yield server
    server.stop()


async def test_the_adopted_bot_runs_the_reference_story(adopted_server):
    user_id, session_id = "team-user-1", "team-session-1"
    async with ToastStream(adopted_server.proactive, user_id) as toast:
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{adopted_server.proactive}/events", json={"batch": three_saves(user_id, session_id)})
        assert response.status_code == 200, response.text
        frame = await toast.next_event(timeout=10)
    assert frame is not None, "no toast"
    offer = frame["data"]
    assert offer["trigger_id"] == "bulk_edit_opportunity"
    chat = await ChatClient(adopted_server.url, user_id).connect()
    try:
        response = await inject(adopted_server.proactive, chat.session_id, offer["body"], user_id,
                                trigger_id=offer["trigger_id"])
        assert response.status_code == 200, response.text
        question = await chat.next_bot_message(timeout=10)
        follow_up = await chat.next_bot_message(timeout=10)
    finally:
        await chat.close()
    assert question is not None and question["text"] == offer["body"]
    assert follow_up is not None and "Bulk edit" in follow_up["text"]  # the how-to, with no LLM configured
    log = adopted_server.log()
    assert "running actions in-process: action_grounded_reply, action_send_proactive" in log
    assert log.index("proactive trigger firing") < log.index("proactive offer published") < log.index("proactive injected question")


def test_sections_written_with_nothing_under_them_are_filled_in(tmp_path):
    bot = _rasa_init(tmp_path / "bot")
    domain = bot / "domain.yml"
    domain.write_text(domain.read_text() + "\nentities:\n\nslots:\n")
    result = _adopt(bot)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "entity proactive_text" in result.stdout and "slot proactive_text" in result.stdout

