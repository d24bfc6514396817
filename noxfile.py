"""Lint, typecheck and tests: `make check` (or `nox` inside the project's environment).

Sessions run in the active environment instead of building their own, because each fresh
virtualenv would install torch again (gigabytes); `make check` puts `.venv/bin` first on PATH.
"""

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

SOURCES = ["text_recognizer", "training", "tests", "benchmarks", "main.py", "noxfile.py"]


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    session.run("ruff", "check", *SOURCES)
    session.run("ruff", "format", "--check", *SOURCES)
    session.run("lint-imports")


@nox.session(venv_backend="none")
def typecheck(session: nox.Session) -> None:
    session.run("mypy")


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    session.run("pytest", "-q", *session.posargs)
