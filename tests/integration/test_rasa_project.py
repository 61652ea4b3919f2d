"""The Rasa project stays a normal Rasa project: validated data, passing story tests."""

import subprocess

from rasa_server import BOT, MODEL, RASA


def run_rasa(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(RASA), *args], cwd=BOT, capture_output=True, text=True, timeout=timeout,
                          env={"RASA_TELEMETRY_ENABLED": "false", "PYTHONWARNINGS": "ignore", "PATH": "/usr/bin:/bin"})


def test_rasa_data_validate_is_clean():
    result = run_rasa("data", "validate", "--fail-on-warnings")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_story_tests_predict_action_send_proactive_for_external_proactive(tmp_path):
    result = run_rasa("test", "core", "--stories", "tests", "-m", str(MODEL), "--out", str(tmp_path),
                      "--fail-on-prediction-errors")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = (tmp_path / "story_report.json").read_text()
    assert '"action_send_proactive"' in report
