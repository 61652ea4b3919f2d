"""The proactive.yml validator: every problem, each at its file:line and key."""

from pathlib import Path
from typing import List

import pytest

from addons.checks.validate import InvalidConfig, main, page_pattern_problem, raise_if_invalid, validate_data, validate_file
from addons.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]

# Line numbers the tests below refer to are those of this text.
VALID = """\
product_id: demo
chat:
  ui_vocabulary: ["Bulk edit", "Apply to N"]
tours:
  - id: bulk_tour
    flow_id: bulk-edit
    label: Show me
    page: /projects
triggers:
  - id: bulk_offer
    type: repeated_action
    page: /projects
    action_hints: ["save changes"]
    min_count: 3
    window_s: 120
    body: Want to see bulk edit?
    tours: [bulk_tour]
    how_to:
      - 'Pick "Bulk edit".'
      - 'Click "Apply to 3".'
"""


def problems(text: str) -> List[str]:
    return [str(p) for p in validate_data(text, "proactive.yml")]


def edited(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new)


@pytest.mark.parametrize("path", [REPO / "rasa-bot" / "proactive.yml", REPO / "adopt" / "proactive.yml"])
def test_the_shipped_config_and_the_production_template_are_clean(path):
    assert validate_file(path) == []


def test_the_base_text_of_these_tests_is_clean_and_loads():
    assert problems(VALID) == []


@pytest.mark.parametrize("old,new,expected", [
    ("product_id: demo", "product_id: demo\nsesion: {}",
     "proactive.yml:2: sesion: unknown key 'sesion'; did you mean 'session'?"),
    ("chat:", "chat:\n  sumary: {enabled: false}",
     "proactive.yml:3: chat.sumary: unknown key 'sumary'; did you mean 'summary'?"),
    ("    label: Show me", "    label: Show me\n    colour: red",
     "proactive.yml:8: tours[0].colour: unknown key 'colour'; known keys: cooldown_period_s, flow_id, id, "
     "interaction_timeout_s, label, page"),
    ("    window_s: 120", "    window_s: 120\n    min_cout: 3",
     "proactive.yml:16: triggers[0].min_cout: unknown key 'min_cout'; did you mean 'min_count'?"),
])
def test_unknown_keys_are_reported_at_every_level_with_the_closest_known_one(old, new, expected):
    assert problems(edited(old, new)) == [expected]


def test_a_trigger_s_keys_are_those_of_its_type_and_nested_matches_are_checked_too():
    text = """\
product_id: demo
triggers:
  - id: after_export
    type: sequence
    first: {label: [export], pgae: /reports}
    then: {kind: [click]}
    within_s: 60
    page: /reports
    body: Sharing it?
    how_to: ["Share it."]
  - id: user_page_dwell
    type: builtin
    name: Lingering
    description: Stays on a page.
    context_extra: {dwell_threshold_seconds: 90, anything: goes}
    how_to: ["Look around."]
"""
    assert problems(text) == [
        "proactive.yml:5: triggers[0].first.pgae: unknown key 'pgae'; did you mean 'page'?",
        "proactive.yml:8: triggers[0].page: unknown key 'page'; known keys: adopted, body, first, holdout_pct, how_to, "
        "id, not_between, then, tours, type, within_s",
    ]


def test_a_built_in_trigger_the_sdk_does_not_have_is_reported():
    text = """\
product_id: demo
triggers:
  - id: lingering
    type: builtin
    name: Lingering
    description: Stays on a page.
    how_to: ["Look around."]
"""
    assert problems(text) == [
        "proactive.yml:3: triggers[0].id: no autoplay-sdk built-in trigger 'lingering'; the built-ins are "
        "['canonical_url_ping_pong', 'section_playbook_match', 'user_page_dwell']",
    ]


@pytest.mark.parametrize("pattern", ["/", "/projects", "/projects/", "/projects/*/settings", "/docs/**", "/projects/:id/edit"])
def test_good_page_patterns_pass(pattern):
    assert page_pattern_problem(pattern) is None


@pytest.mark.parametrize("pattern,fragment", [
    ("projects", "must start with '/'"),
    ("", "must start with '/'"),
    ("/a//b", "empty segment"),
    ("/a b", "cannot hold"),
    ("/search?q=1", "cannot hold"),
    ("/page#top", "cannot hold"),
    ("/docs/***", "whole segments"),
    ("/docs/a*", "whole segments"),
    ("/projects/:", "path parameter"),
    (42, "expected a page pattern (a path like '/projects'), got 42"),
    (None, "got None"),
])
def test_bad_page_patterns_say_what_is_wrong(pattern, fragment):
    problem = page_pattern_problem(pattern)
    assert problem is not None and fragment in problem


def test_a_bad_page_is_reported_once_at_its_line_in_tours_triggers_and_nested_matches():
    text = edited("    page: /projects\ntriggers:", "    page: /projects//all\ntriggers:").replace(
        "    page: /projects\n    action_hints", "    page: /projects/***\n    action_hints"
    )
    assert problems(text) == [
        "proactive.yml:8: tours[0].page: page pattern '/projects//all' has an empty segment ('//')",
        "proactive.yml:12: triggers[0].page: page pattern '/projects/***': '*' and '**' stand for whole segments, not '***'",
    ]


def test_a_tour_no_one_defined_is_reported_at_the_reference():
    assert problems(edited("tours: [bulk_tour]", "tours: [bulk_tour, bulk_tuor]")) == [
        "proactive.yml:17: triggers[0].tours[1]: unknown tour 'bulk_tuor'; known: ['bulk_tour']"
    ]


def test_a_trigger_without_how_to_is_an_error():
    text = VALID[: VALID.index("    how_to:")]
    assert problems(text) == [
        "proactive.yml:10: triggers[0].how_to: missing: the chat's follow-up explains the faster way from these "
        "steps; add how_to, a list of steps"
    ]


def test_how_to_names_must_be_in_the_ui_vocabulary_where_a_number_may_fill_an_n():
    text = edited('["Bulk edit", "Apply to N"]', '["Apply to N"]').replace("Pick \"Bulk edit\".", "Pick **Bulk  EDIT** or `Edit`.")
    assert problems(text) == [
        "proactive.yml:19: triggers[0].how_to[0]: UI name 'Bulk  EDIT' is not in chat.ui_vocabulary; add it there, or correct the name",
        "proactive.yml:19: triggers[0].how_to[0]: UI name 'Edit' is not in chat.ui_vocabulary; add it there, or correct the name",
    ]


@pytest.mark.parametrize("old,new,expected", [
    ("product_id: demo", "product_id: demo\nsession:\n  cooldown_period_s: -1",
     "proactive.yml:3: session.cooldown_period_s: expected a positive number, got -1"),
    ("product_id: demo", "product_id: demo\nredis:\n  cached_users: 0",
     "proactive.yml:3: redis.cached_users: expected a whole number of at least 1, got 0"),
    ("    min_count: 3", "    min_count: 0.5",
     "proactive.yml:14: triggers[0].min_count: expected a whole number of at least 1, got 0.5"),
    ("    label: Show me\n", "",
     "proactive.yml:5: tours[0].label: expected a non-empty string, got None"),
    ("    type: repeated_action", "    type: repeated",
     "proactive.yml:11: triggers[0].type: expected one of ['absence', 'builtin', 'dwell', 'repeated_action', "
     "'sequence'], got 'repeated'"),
    ("  ui_vocabulary: [\"Bulk edit\", \"Apply to N\"]", "  ui_vocabulary: Bulk edit",
     "proactive.yml:3: chat.ui_vocabulary: expected a non-empty list of strings, got 'Bulk edit'"),
])
def test_what_parse_config_rejects_is_reported_at_the_key_it_names(old, new, expected):
    assert expected in problems(edited(old, new))


def test_values_are_read_as_load_config_reads_them(tmp_path):
    # load_config reads with PyYAML, for which `yes` is true; ruamel (YAML 1.2) reads a string.
    path = tmp_path / "proactive.yml"
    path.write_text(VALID + "llm:\n  enabled: yes\n", encoding="utf-8")
    assert validate_file(path) == []
    assert load_config(path).llm.enabled is True


def test_every_problem_in_a_file_is_reported_not_only_the_first():
    text = """\
product_id: demo
session:
  cooldown_period_s: 0
  interaction_timeout_s: soon
tours:
  - id: t
    flow_id: f
    label: L
    page: nowhere
    cooldown_period_s: 0
  - id: t
    flow_id: f
    label: L
    page: /b
triggers:
  - id: r
    type: repeated_action
    page: /p
    action_hints: ["save"]
    min_count: 0
    widow_s: 3
    body: hi
    tours: [nope]
    how_to: ["Save."]
  - not a trigger
"""
    assert problems(text) == [
        "proactive.yml:3: session.cooldown_period_s: expected a positive number, got 0",
        "proactive.yml:4: session.interaction_timeout_s: expected a positive number, got 'soon'",
        "proactive.yml:9: tours[0].page: page pattern 'nowhere' must start with '/'",
        "proactive.yml:10: tours[0].cooldown_period_s: expected a positive number, got 0",
        "proactive.yml:11: tours[1].id: duplicate id 't'; tours[0] has it too",
        "proactive.yml:16: triggers[0].window_s: expected a positive number, got None",
        "proactive.yml:20: triggers[0].min_count: expected a whole number of at least 1, got 0",
        "proactive.yml:21: triggers[0].widow_s: unknown key 'widow_s'; did you mean 'window_s'?",
        "proactive.yml:23: triggers[0].tours[0]: unknown tour 'nope'; known: ['t']",
        "proactive.yml:25: triggers[1]: expected a mapping, got str",
    ]


@pytest.mark.parametrize("text,expected", [
    ("product_id: demo\ntours: [a, b\nchat: {}\n",
     "proactive.yml:3: not valid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence)"),
    ("product_id: demo\nchat: {}\nproduct_id: other\n",
     'proactive.yml:3: not valid YAML: found duplicate key "product_id" with value "other" (original value: "demo") '
     "(while constructing a mapping)"),
    ("product_id: demo\nbody: \x07\n", "proactive.yml:2: not valid YAML: unacceptable character #x0007"),
])
def test_malformed_yaml_is_one_problem_at_its_line_not_an_exception(text, expected):
    found = problems(text)
    assert len(found) == 1 and found[0].startswith(expected)


def test_an_empty_file_or_a_list_is_reported_not_raised():
    assert problems("") == ["proactive.yml:1: product_id: expected a non-empty string, got None"]
    assert problems("- a\n- b\n") == ["proactive.yml:1: expected a mapping, got list"]


def test_an_unreadable_file_is_one_problem(tmp_path):
    [problem] = validate_file(tmp_path / "missing.yml")
    assert problem.line is None and problem.key == ""
    assert str(problem).startswith(f"{tmp_path / 'missing.yml'}: cannot read it: [Errno 2] No such file")


def test_raise_if_invalid_names_every_problem_one_per_line(tmp_path):
    path = tmp_path / "proactive.yml"
    path.write_text(edited("    min_count: 3", "    min_count: 0\n    colour: red"), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        raise_if_invalid(path)
    assert isinstance(raised.value, InvalidConfig)
    assert str(raised.value).splitlines() == [str(p) for p in raised.value.problems] == [
        f"{path}:14: triggers[0].min_count: expected a whole number of at least 1, got 0",
        f"{path}:15: triggers[0].colour: unknown key 'colour'; known keys: action_hints, adopted, body, "
        "discovered_hints, holdout_pct, how_to, id, min_count, page, tours, type, window_s",
    ]
    raise_if_invalid(REPO / "rasa-bot" / "proactive.yml")


def test_the_command_prints_each_problem_and_exits_1_or_says_ok(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("proactive.yml").write_text(VALID, encoding="utf-8")
    assert main([]) == 0
    assert capsys.readouterr().out == "proactive.yml: ok\n"
    Path("other.yml").write_text(edited("tours: [bulk_tour]", "tours: [gone]"), encoding="utf-8")
    assert main(["other.yml"]) == 1
    assert capsys.readouterr().out == "other.yml:17: triggers[0].tours[0]: unknown tour 'gone'; known: ['bulk_tour']\n"
