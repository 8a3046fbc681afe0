"""The gateway's environment: `APP_ENV` and `TESTING`, read by the gateway's own rule.

They are the gateway's variables, not `EXPORTER_*` ones: the exporter runs beside the gateway
and must agree with it on whether this is production and whether test mode is on. The
exporter has no test-mode data path; the environment only guards production and is reported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exporter import __version__

PRODUCTION = "production"
# The gateway's rule: test mode when APP_ENV is one of these, or TESTING is true (any case).
TESTING_APP_ENVS = frozenset({"testing", "test"})
TRUE_VALUES = frozenset({"1", "true", "yes"})
# What validate-env accepts for TESTING in production besides unset; empty means unset to
# the gateway too, as a manifest's `TESTING: ""` does.
FALSE_VALUES = frozenset({"", "0", "false", "no"})


def _normal(value: str | None) -> str:
    return (value or "").strip().lower()


@dataclass(frozen=True)
class Environment:
    """The raw values of APP_ENV and TESTING (None when unset)."""

    app_env: str | None = None
    testing_flag: str | None = None

    @property
    def testing(self) -> bool:
        """Test mode by the gateway's rule."""
        return _normal(self.app_env) in TESTING_APP_ENVS or self.testing_flag_on

    @property
    def testing_flag_on(self) -> bool:
        return _normal(self.testing_flag) in TRUE_VALUES

    @property
    def production(self) -> bool:
        # Any spelling of production counts here, so the guard errs towards refusing;
        # validate-env, the pre-deployment check, insists on the exact value.
        return _normal(self.app_env) == PRODUCTION

    @property
    def testing_in_production(self) -> bool:
        return self.production and self.testing_flag_on

    def info(self) -> dict[str, Any]:
        return {"app_env": self.app_env, "testing": self.testing}


def read_environment(environ: Mapping[str, str] | None = None) -> Environment:
    source = os.environ if environ is None else environ
    return Environment(app_env=source.get("APP_ENV"), testing_flag=source.get("TESTING"))


def about(environment: Environment) -> dict[str, Any]:
    """What every document says about the process serving it."""
    return {"exporter": {"version": __version__}, "environment": environment.info()}


def production_guard(environment: Environment) -> str | None:
    """Why `serve` must not start (test mode on in production), or None."""
    if not environment.testing_in_production:
        return None
    return (
        f"refusing to start: TESTING={environment.testing_flag!r} turns on test mode and "
        f"APP_ENV={environment.app_env!r} is production; unset TESTING or set it to false"
    )


@dataclass(frozen=True)
class EnvCheck:
    """One pre-deployment check: what was found in a variable, and what production needs."""

    variable: str
    found: str | None
    required: str
    ok: bool

    def line(self) -> str:
        found = "unset" if self.found is None else json.dumps(self.found)
        verdict = "ok  " if self.ok else "FAIL"
        return f"{verdict}  {self.variable}: found {found}; required {self.required}"

    def document(self) -> dict[str, Any]:
        return {
            "variable": self.variable,
            "found": self.found,
            "required": self.required,
            "ok": self.ok,
        }


def validate(environment: Environment) -> list[EnvCheck]:
    """The checks of `validate-env`: production exactly, and test mode off."""
    return [
        EnvCheck(
            "APP_ENV",
            environment.app_env,
            f'exactly "{PRODUCTION}"',
            environment.app_env == PRODUCTION,
        ),
        EnvCheck(
            "TESTING",
            environment.testing_flag,
            "unset, empty or false (0, false or no; any case)",
            environment.testing_flag is None or _normal(environment.testing_flag) in FALSE_VALUES,
        ),
    ]


def validate_env(*, as_json: bool, environ: Mapping[str, str] | None = None) -> int:
    """The `validate-env` command: one line per check (or JSON); exit 0 only when all pass."""
    checks = validate(read_environment(environ))
    passed = all(check.ok for check in checks)
    if as_json:
        print(json.dumps({"ok": passed, "checks": [check.document() for check in checks]}))
    else:
        for check in checks:
            print(check.line())
        print("ready for production" if passed else "NOT ready for production")
    return 0 if passed else 1
