"""The hallucination guard and the deterministic how-to rendering, without a model."""

import pytest

from addons.answers.guard import UIGuard, quoted_labels, render_how_to

HOW_TO = (
    "At the top right of the table (next to the status filter), click the small kebab menu icon (the three dots: ⋯).",
    'A dropdown opens — pick "Bulk edit". Checkboxes appear on every row.',
    "Tick the projects you want to update.",
    "A small toolbar appears at the bottom of the screen. Pick the new priority from the dropdown.",
    'Click "Apply to N" — all selected projects update in one shot.',
)


def test_quoted_bolded_and_code_spans_are_label_candidates():
    text = 'Pick "Bulk edit", then **Apply to 3**, or “Edit Selected”, ‘Priority’, \'Status\' and `Save`.'
    assert quoted_labels(text) == ("Bulk edit", "Apply to 3", "Edit Selected", "Priority", "Status", "Save")


def test_apostrophes_are_not_quotes():
    assert quoted_labels("Don't worry, the users' projects aren't lost; it's fine.") == ()


def test_bold_wrapping_a_quote_yields_the_bare_label():
    assert quoted_labels('Click **"Bulk edit"** now.') == ("Bulk edit",)


def test_labels_from_the_how_to_pass_whatever_their_case():
    guard = UIGuard(HOW_TO)
    verdict = guard.check('Open the menu, choose **BULK EDIT**, tick rows and press "apply to n".')
    assert verdict.ok and verdict.offending == ()


def test_a_number_fills_the_how_tos_n_placeholder():
    assert UIGuard(HOW_TO).check('Then click "Apply to 12".').ok


def test_an_invented_button_is_named_in_the_verdict():
    verdict = UIGuard(HOW_TO).check('Select the rows and click **Edit Selected**, then "Apply to 3".')
    assert not verdict.ok
    assert verdict.offending == ("Edit Selected",)
    assert verdict.reason == 'guard violation: unknown UI "Edit Selected"'


@pytest.mark.parametrize("label", ["Bulk", "bulk edit", "Bulk  Edit", "kebab menu"])
def test_whole_words_of_the_grounding_pass(label):
    assert UIGuard(HOW_TO).known(label)


@pytest.mark.parametrize("label", ["ulk", "Bulk editor", "Multi-edit", "Select all"])
def test_partial_words_and_unknown_names_fail(label):
    assert not UIGuard(HOW_TO).known(label)


def test_the_vocabulary_extends_what_is_known():
    answer = 'You clicked "Save changes" three times.'
    assert not UIGuard(HOW_TO).check(answer).ok
    assert UIGuard([*HOW_TO, "Save changes", "Edit"]).check(answer).ok


def test_an_answer_without_quotes_passes():
    assert UIGuard(HOW_TO).check("Open the three-dot menu above the table and follow the steps.").ok


def test_the_how_to_rendering_is_the_steps_word_for_word_numbered():
    text = render_how_to(HOW_TO)
    lines = text.split("\n")
    assert lines[0] == "Here's the faster way, step by step:"
    assert lines[1:] == [f"{i}. {step}" for i, step in enumerate(HOW_TO, 1)]
    assert UIGuard(HOW_TO).check(text).ok  # the fallback passes its own guard


def test_the_how_to_rendering_greets_by_first_name_when_known():
    assert render_how_to(HOW_TO[:1], first_name="Ada").startswith("Sure, Ada! Here's the faster way")
