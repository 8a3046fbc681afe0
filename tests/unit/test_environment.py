"""The gateway's environment: its test-mode rule, validate-env and the production guard."""

from __future__ import annotations

import json

import pytest

from exporter.cli import main
from exporter.environment import Environment, production_guard, read_environment, validate


@pytest.mark.parametrize(
    ("app_env", "testing_flag", "testing"),
    [
        ("testing", None, True),
        ("TEST", None, True),
        ("production", "1", True),
        ("staging", "Yes", True),
        (None, "TRUE", True),
        ("production", None, False),
        ("production", "false", False),
        ("development", "maybe", False),
        (None, None, False),
    ],
)
def test_test_mode_follows_the_gateways_rule_in_any_case(
    app_env: str | None, testing_flag: str | None, testing: bool
) -> None:
    assert Environment(app_env, testing_flag).testing is testing


def test_the_environment_is_read_from_app_env_and_testing() -> None:
    environment = read_environment({"APP_ENV": "production", "TESTING": "0", "OTHER": "x"})
    assert environment == Environment(app_env="production", testing_flag="0")
    assert read_environment({}) == Environment(app_env=None, testing_flag=None)


@pytest.mark.parametrize("testing_flag", [None, "", "0", "false", "No", "FALSE"])
def test_validate_env_passes_production_with_test_mode_off(testing_flag: str | None) -> None:
    checks = validate(Environment("production", testing_flag))
    assert [(check.variable, check.ok) for check in checks] == [
        ("APP_ENV", True),
        ("TESTING", True),
    ]


@pytest.mark.parametrize("app_env", [None, "staging", "Production", " production", "testing"])
def test_validate_env_requires_app_env_to_be_exactly_production(app_env: str | None) -> None:
    app_env_check = validate(Environment(app_env, None))[0]
    assert app_env_check.ok is False
    assert app_env_check.required == 'exactly "production"'


@pytest.mark.parametrize("testing_flag", ["1", "true", "yes", "maybe"])
def test_validate_env_fails_on_any_testing_value_but_false(testing_flag: str) -> None:
    testing_check = validate(Environment("production", testing_flag))[1]
    assert testing_check.ok is False
    assert testing_check.found == testing_flag


def test_each_check_is_one_line_saying_what_was_found_and_what_is_required() -> None:
    lines = [check.line() for check in validate(Environment("staging", None))]
    assert lines == [
        'FAIL  APP_ENV: found "staging"; required exactly "production"',
        "ok    TESTING: found unset; required unset, empty or false (0, false or no; any case)",
    ]


def test_validate_env_command_exits_0_only_when_ready_for_production(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("TESTING", raising=False)
    assert main(["validate-env"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "ready for production"
    monkeypatch.setenv("TESTING", "true")
    assert main(["validate-env"]) == 1
    output = capsys.readouterr().out
    assert 'FAIL  TESTING: found "true"' in output
    assert output.splitlines()[-1] == "NOT ready for production"


def test_validate_env_json_lists_every_check_for_pipelines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APP_ENV", "testing")
    monkeypatch.setenv("TESTING", "1")
    assert main(["validate-env", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {
        "ok": False,
        "checks": [
            {
                "variable": "APP_ENV",
                "found": "testing",
                "required": 'exactly "production"',
                "ok": False,
            },
            {
                "variable": "TESTING",
                "found": "1",
                "required": "unset, empty or false (0, false or no; any case)",
                "ok": False,
            },
        ],
    }


def test_the_guard_refuses_test_mode_in_production_and_names_testing() -> None:
    refusal = production_guard(Environment("production", "yes"))
    assert refusal is not None
    assert "TESTING='yes'" in refusal
    # Any spelling of production is refused: the guard errs towards refusing.
    assert production_guard(Environment("PRODUCTION", "true")) is not None


@pytest.mark.parametrize(
    "environment",
    [Environment("production", None), Environment("testing", "true"), Environment(None, "1")],
)
def test_the_guard_lets_everything_else_start(environment: Environment) -> None:
    assert production_guard(environment) is None


def test_the_environment_is_reported_as_app_env_and_test_mode() -> None:
    assert Environment("testing", None).info() == {"app_env": "testing", "testing": True}
    assert Environment(None, None).info() == {"app_env": None, "testing": False}
