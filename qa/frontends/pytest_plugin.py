"""qa-bench's pytest plugin, installed through the ``pytest11`` entry point: hooks only.

The options are ``qa.frontends.options`` (the same as ``qa-bench run``); the logic is
``qa.frontends.pytest_support``
over ``qa.run.runner``. The plugin is active in every pytest run of an environment where qa-bench
is installed; it builds a benchmark session only when the run collects the checkout's
``benchmarks/`` folder (``pytest benchmarks`` from the checkout, ``pytest /path/to/benchmarks``
from anywhere). Its state lives in ``config.stash``. Imports of ``qa`` beyond the options stay
inside the hooks, so a plain ``pytest tests`` loads nothing heavy.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from qa.frontends.options import add_run_options, read_run_options
from qa.run import stopping

# qa.frontends.pytest_support.Session, or None outside benchmark runs
SESSION = pytest.StashKey[Any]()
REPORT = pytest.StashKey[Path]()
SIGNALS = pytest.StashKey[Any]()  # the active qa.run.stopping.signals_as_interrupts()
OUTCOME = pytest.StashKey[Any]()  # qa.gating.outcome.Outcome of the benchmark session
STOPPED = pytest.StashKey[int]()  # the exit code of the signal that stopped the session
ENTRY_TESTS = pytest.StashKey[int]()  # how many selected tests judge an entry


def pytest_addoption(parser: pytest.Parser) -> None:
    add_run_options(parser.getgroup("qa-bench", "qa-bench (the options of qa-bench run)")
                    .addoption)


def pytest_configure(config: pytest.Config) -> None:
    from qa.errors import QABenchError
    from qa.frontends import pytest_support

    for line in pytest_support.marker_lines():
        config.addinivalue_line("markers", line)
    config.stash[SESSION] = None
    if not pytest_support.collects_benchmarks(config.args, config.rootpath,
                                              config.invocation_params.dir):
        return
    try:
        session = pytest_support.make_session(read_run_options(config.getoption),
                                              config.rootpath, write=_line_writer(config))
    except QABenchError as exc:
        pytest.exit(f"qa-bench: error: {exc}", returncode=2)
    if session.plan.listing is not None:  # --list: the entries, nothing run
        print(session.plan.listing)
        if session.plan.pod_checks is None:
            pytest.exit("qa-bench: --list: nothing run", returncode=0)
    if session.plan.pod_checks is not None:  # --preflight: the static rules, nothing run
        from qa.run.preflight import format_pod_checks, pod_checks_outcome

        print(format_pod_checks(session.plan.pod_checks))
        outcome = pod_checks_outcome(session.plan.pod_checks)
        pytest.exit(f"qa-bench: --preflight: {outcome.reason}", returncode=outcome.code)
    config.stash[SESSION] = session
    # SIGTERM/SIGHUP end the session like Ctrl-C: partial report, then exit 128 + N.
    config.stash[SIGNALS] = stopping.signals_as_interrupts(
        lambda signum: config.stash.__setitem__(STOPPED, 128 + signum))
    config.stash[SIGNALS].__enter__()


def _line_writer(config: pytest.Config) -> Any:
    """One progress line through pytest's terminal reporter, past its output capture (as
    pytest's live logging writes), so a long entry shows its stages while its test runs."""

    def write(line: str) -> None:
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        if terminal is None:  # -p no:terminal
            print(line, file=sys.stderr, flush=True)
            return
        capture = config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture is not None else nullcontext():
            terminal.write_line(line)
            terminal.flush()

    return write


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """A benchmark session runs the profile's entries; the ``perf`` tests only when asked."""
    qa_session = config.stash.get(SESSION, None)
    if qa_session is None:
        return
    from qa.frontends import pytest_support

    kept, dropped = pytest_support.select_items(items, config.args,
                                                config.invocation_params.dir,
                                                config.getoption("markexpr") or "")
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    qa_session.selected = pytest_support.selected_entries(items)
    config.stash[ENTRY_TESTS] = sum("entry" in getattr(item, "fixturenames", ())
                                    for item in items)


def pytest_unconfigure(config: pytest.Config) -> None:
    handlers = config.stash.get(SIGNALS, None)
    if handlers is not None:
        handlers.__exit__(None, None, None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "entry" not in metafunc.fixturenames:
        return
    from qa.frontends import pytest_support

    session = metafunc.config.stash.get(SESSION, None)
    params = []
    for entry in session.entries if session else []:
        marks = [getattr(pytest.mark, m) for m in entry.marks]
        reason = pytest_support.skip_reason(session, entry)
        if reason:
            marks.append(pytest.mark.skip(reason=f"{entry.id}: {reason}"))
        params.append(pytest.param(entry, id=entry.id, marks=marks))
    metafunc.parametrize("entry", params)


@pytest.fixture(scope="session")
def qa_session(request: pytest.FixtureRequest) -> Any:
    """The benchmark session (entries, options, shared results); None outside benchmark runs."""
    return request.config.stash.get(SESSION, None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    qa_session = session.config.stash.get(SESSION, None)
    if qa_session is None:
        return
    from qa.frontends.pytest_support import finish, outcome
    from qa.gating.outcome import EXIT_NOTHING_JUDGED

    qa_session.options.reporter.end_matrix()
    if not session.config.stash.get(ENTRY_TESTS, 0) or session.config.option.collectonly:
        return  # no entry test selected (``-m perf``), or only listed: pytest's outcome stands
    path = finish(qa_session, incomplete=exitstatus == pytest.ExitCode.INTERRUPTED)
    if path is not None:
        session.config.stash[REPORT] = path
    result = outcome(qa_session)
    session.config.stash[OUTCOME] = result
    if exitstatus == pytest.ExitCode.OK and result.code == EXIT_NOTHING_JUDGED:
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED  # 5, as qa-bench run's
    if STOPPED in session.config.stash:  # SIGTERM/SIGHUP: 128 + N, as qa-bench run's
        session.exitstatus = session.config.stash[STOPPED]

def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    path = config.stash.get(REPORT, None)
    if path is not None:
        terminalreporter.write_line(f"qa-bench report: {path}")
    qa_session = config.stash.get(SESSION, None)
    for note in qa_session.notes if qa_session else []:
        terminalreporter.write_line(f"qa-bench: {note}")
    result = config.stash.get(OUTCOME, None)
    if result is not None:
        terminalreporter.write_line(f"qa-bench: {result.reason}")
