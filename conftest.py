"""pytest wiring for qa-bench: options, markers, skips and the end-of-session report.

Only hooks live here; the logic is in ``qa.pytest_support`` (shared with the ``qa-bench`` CLI).
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

BENCH_OPTIONS = [
    ("--profile", {"default": "smoke", "help": "matrix profile name or TOML path"}),
    ("--backend", {"default": None, "help": "override the profile's backend (torch, ipu)"}),
    ("--models", {"default": None, "help": "comma-separated models"}),
    ("--pods", {"default": None, "help": "comma-separated pods (ipu) or devices (torch)"}),
    ("--datasets", {"default": None, "help": "comma-separated datasets"}),
    ("--seeds", {"default": None, "type": int, "help": "seeds per entry (42, 43, ...)"}),
    ("--update-baselines", {"action": "store_true", "help": "write baselines from this run"}),
    ("--report-dir", {"default": None, "help": "run folder for results and report.md"}),
    ("--baselines-dir", {"default": "baselines", "help": "baselines folder"}),
    ("--squad-dir", {"default": None,
                     "help": "folder with SQuAD dev-v1.1.json / dev-v2.0.json "
                             "(or $QA_BENCH_SQUAD_DIR)"}),
    ("--entry-timeout", {"default": None, "type": float, "help": "seconds one entry may take"}),
    ("--set", {"action": "append", "default": [], "help": "config override section.key=value"}),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qa-bench")
    for name, kwargs in BENCH_OPTIONS:
        group.addoption(name, dest="qa_" + name.strip("-").replace("-", "_"), **kwargs)


def _uses_benchmarks(config: pytest.Config) -> bool:
    return any("benchmarks" in str(arg) for arg in config.args)


def pytest_configure(config: pytest.Config) -> None:
    from qa.errors import QABenchError
    from qa.pytest_support import backend_markers, make_session

    for line in backend_markers():  # each backend declares its own marks (ipu, cuda, ...)
        config.addinivalue_line("markers", line)
    config._qa_session = None
    if not _uses_benchmarks(config):
        return
    try:
        config._qa_session = make_session(config.getoption, config.rootpath)
    except QABenchError as exc:
        pytest.exit(f"qa-bench: error: {exc}", returncode=2)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "entry" not in metafunc.fixturenames:
        return
    from qa.pytest_support import skip_reason

    session = metafunc.config._qa_session
    entries = session.entries if session else []
    params = []
    for entry in entries:
        marks = [getattr(pytest.mark, m) for m in entry.marks]
        reason = skip_reason(entry)
        if reason:
            marks.append(pytest.mark.skip(reason=f"{entry.id}: {reason}"))
        params.append(pytest.param(entry, id=entry.id, marks=marks))
    metafunc.parametrize("entry", params)


@pytest.fixture(scope="session")
def qa_session(request: pytest.FixtureRequest):
    """The benchmark session (entries, options, shared results)."""
    return request.config._qa_session


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    qa_session = getattr(session.config, "_qa_session", None)
    if qa_session is None:
        return
    from qa.pytest_support import finish

    path = finish(qa_session, incomplete=exitstatus == pytest.ExitCode.INTERRUPTED)
    if path is not None:
        session.config._qa_report = path


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    path = getattr(config, "_qa_report", None)
    if path is not None:
        terminalreporter.write_line(f"qa-bench report: {path}")
    qa_session = getattr(config, "_qa_session", None)
    for note in getattr(qa_session, "notes", []) or []:
        terminalreporter.write_line(f"qa-bench: {note}")
