"""Lint, typecheck, tests and the docs build: `make check` (or `nox` inside the project's
environment).

Sessions run in the active environment instead of building their own, because each fresh
virtualenv would install torch again (gigabytes); `make check` puts `.venv/bin` first on PATH.
"""

import tempfile

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "docs"]
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


@nox.session(venv_backend="none")
def docs(session: nox.Session) -> None:
    """The site, strict: a broken link, a missing page or a page left out of the nav fails."""
    with tempfile.TemporaryDirectory() as site:
        session.run(
            "mkdocs", "build", "--strict", "--site-dir", site, env={"NO_MKDOCS_2_WARNING": "1"}
        )
