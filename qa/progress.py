"""What a matrix run says while it works: the run k of N, its stage, a bar where there is a
count, and the matrix's time left.

One reporter per process, set like logging's handlers (``use``): the runner starts the matrix
and each run (an entry for one seed), the pipeline names its stages (``stage``), a backend asks
for a counter where it has a count (``counter``: train steps, predict batches). So the backend
contract keeps its ``progress: bool`` and a backend from another distribution needs no change:
the bool says whether this process may show a count, the reporter how.

Two ways to show it, picked by the front end (``for_stream``):

- ``LiveReporter`` (a terminal): one redrawn status line, ``[2/6] ENTRY seed 43 · train`` with
  a bar over the count and the matrix ETA, ticking every second; above it one line per finished
  run with its stages' times. Bars are tqdm's (already installed with transformers and
  datasets, kept up, handles terminal width and the ``write``-above-the-bar dance); a small
  thread redraws the line so that the clock moves in stages without a count.
- ``LineReporter`` (a CI log, ``--no-progress``, pytest): plain lines, never a carriage return:
  one when a run starts (with the ETA), one per finished stage with its elapsed time
  (``[2/6] ENTRY seed 43 · train · 41.2 s``), one when the run ends; during a long count a line
  at most every ``counts_every`` seconds (none under ``--no-progress``).

The ETA (``MatrixEta``) is the cost model's estimate of every run not yet finished
(``qa.run.sharding.estimate_cost``, handed in by the runner), scaled by measured / estimated of
the runs that finished: the cost model knows the ratios between entries, the clock the machine.

A base module: imports nothing of ``qa`` (the pipeline and the backends below the runner both
call it).
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

SEP = " · "
#: Every line a reporter writes starts ``[k/N] `` or ``matrix: `` (what a reader of stderr,
#: or a test, tells apart from the one line of an error).
PROGRESS_LINE = r"^(\[\d+/\d+\] |matrix: )"


def seconds_text(seconds: float) -> str:
    """``0.4 s``, ``41.2 s``, ``12.5 min``, ``3.2 h``: a stage's or a matrix's time."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class MatrixEta:
    """Time left of a matrix: cost-model estimates corrected by the runs measured so far.

    ``ratio`` = measured seconds / estimated seconds, pooled over the runs that finished
    ``ok`` (a failed run stopped early: its time says nothing about the rate). Until one has,
    the raw estimates stand. The run in progress counts as its corrected estimate less the
    time it has already taken (never below zero).
    """

    def __init__(self, estimates: Sequence[float]) -> None:
        self.estimates = [max(float(e), 0.0) for e in estimates]
        self.measured: dict[int, float] = {}
        self._judged: set[int] = set()

    def add(self, estimate: float) -> int:
        """A run the plan did not list (e.g. the pytest layer's order): its index."""
        self.estimates.append(max(float(estimate), 0.0))
        return len(self.estimates) - 1

    def finish(self, index: int, seconds: float, ok: bool = True) -> None:
        """Run ``index`` ended after ``seconds``; only ``ok`` runs correct the estimates."""
        self.measured[index] = max(float(seconds), 0.0)
        if ok:
            self._judged.add(index)

    @property
    def ratio(self) -> float | None:
        """Measured / estimated over the finished ``ok`` runs (None before the first)."""
        estimated = sum(self.estimates[i] for i in self._judged)
        if not self._judged or estimated <= 0:
            return None
        return sum(self.measured[i] for i in self._judged) / estimated

    def remaining(self, current: int | None = None, elapsed: float = 0.0,
                  at_least: float = 0.0) -> float:
        """Seconds left: every unfinished run's corrected estimate, the current one's less
        ``elapsed`` but never under ``at_least`` (what its running count still needs)."""
        scale = self.ratio or 1.0
        left = 0.0
        for index, estimate in enumerate(self.estimates):
            if index in self.measured:
                continue
            if index == current:
                left += max(estimate * scale - elapsed, at_least, 0.0)
            else:
                left += estimate * scale
        return left

    def describe(self, current: int | None = None, elapsed: float = 0.0,
                 at_least: float = 0.0, short: bool = False) -> str:
        """``ETA 3.2 min`` with where it comes from (the cost model, or corrected by runs);
        ``short``: ``ETA 3.2 min`` or ``ETA 3.2 min (×2.3)`` (a terminal line is narrow)."""
        ratio = self.ratio
        left = seconds_text(self.remaining(current, elapsed, at_least))
        if short:
            return f"ETA {left}" + ("" if ratio is None else f" (×{ratio:.2g})")
        source = "cost model" if ratio is None else f"cost model × {ratio:.2g} measured"
        return f"ETA {left} ({source})"


class Counter:
    """A count inside a stage (train steps, predict batches): ``update``, ``close``.

    This one shows nothing (another rank, ``progress=False``, a quiet reporter).
    """

    def update(self, n: int = 1) -> None:
        """``n`` more done."""

    def set_postfix(self, refresh: bool = False, **values: Any) -> None:
        """Values shown beside the bar (the loss), where a bar is shown."""

    def close(self) -> None:
        """The count is over."""


@dataclass
class _Run:
    index: int
    label: str
    started: float
    stage: str | None = None
    stage_started: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)


class Reporter:
    """The quiet reporter (the default, and the base of the others): tracks runs and stages,
    shows nothing. Subclasses show it through the ``_on_*`` methods."""

    bars = False  # True where counts are drawn as live bars (a terminal)

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.eta = MatrixEta([])
        self._index: dict[Hashable, int] = {}
        self._labels: list[str] = []
        self.run: _Run | None = None
        self.started: float | None = None
        # The running count of the current stage: (started, done, total), or None.
        self.count: list[float] | None = None

    # -- the matrix ------------------------------------------------------------------------
    @property
    def total(self) -> int:
        """N: the runs planned (grows when a run outside the plan starts)."""
        return len(self._labels)

    def start_matrix(self, runs: Sequence[tuple[Hashable, str, float]],
                     skipped: int = 0) -> None:
        """The plan: (key, label, estimated seconds) of every run, in order."""
        self.eta = MatrixEta([estimate for _, _, estimate in runs])
        self._index = {key: i for i, (key, _, _) in enumerate(runs)}
        self._labels = [label for _, label, _ in runs]
        self.started = self.clock()
        self._on_matrix(skipped)

    def end_matrix(self) -> None:
        """The matrix is over (or stopped): close what is shown."""
        if self.run is not None:
            self.end_run("stopped")
        if self.started is not None:
            self._on_matrix_end(self.clock() - self.started)
        self.started = None

    # -- one run ----------------------------------------------------------------------------
    def start_run(self, key: Hashable, label: str, estimate: float = 0.0) -> None:
        """Run ``key`` begins (one not in the plan is added to it)."""
        if self.started is None:
            self.started = self.clock()
        if self.run is not None:
            self.end_run("stopped")
        index = self._index.get(key)
        if index is None:
            index = self.eta.add(estimate)
            self._index[key] = index
            self._labels.append(label)
        self.run = _Run(index, self._labels[index], self.clock())
        self._on_run_start()

    def end_run(self, status: str) -> None:
        """The current run ended with ``status`` (``ok`` corrects the ETA)."""
        run = self.run
        if run is None:
            return
        self.end_stages()
        elapsed = self.clock() - run.started
        self.eta.finish(run.index, elapsed, ok=status == "ok")
        self._on_run_end(status, elapsed)
        self.run = None

    def prefix(self) -> str:
        """``[k/N] LABEL`` of the current run."""
        if self.run is None:
            return ""
        return f"[{self.run.index + 1}/{self.total}] {self.run.label}"

    def eta_text(self, short: bool = False) -> str:
        """The matrix ETA now (the current run's elapsed time counted)."""
        run = self.run
        if run is None:
            return self.eta.describe(short=short)
        return self.eta.describe(run.index, self.clock() - run.started, self.count_left(),
                                 short=short)

    def count_left(self) -> float:
        """Seconds the running count still needs at its rate so far (0 without one)."""
        if self.count is None or self.count[1] <= 0:
            return 0.0
        started, done, total = self.count
        return (self.clock() - started) / done * max(total - done, 0)

    def _counted(self, total: int) -> None:
        self.count = [self.clock(), 0, float(total)]

    def _advance(self, n: int) -> None:
        if self.count is not None:
            self.count[1] += n

    # -- stages and counts ------------------------------------------------------------------
    def stage(self, name: str) -> None:
        """The current run enters stage ``name`` (the previous one ends)."""
        run = self.run
        if run is None:
            return
        self.end_stages()
        run.stage, run.stage_started = name, self.clock()
        self._on_stage_start(name)

    def end_stages(self) -> None:
        """The current run's last stage ends."""
        run = self.run
        if run is None or run.stage is None:
            return
        name, elapsed = run.stage, self.clock() - run.stage_started
        run.stages[name] = run.stages.get(name, 0.0) + elapsed
        run.stage, self.count = None, None
        self._on_stage_end(name, elapsed)

    def counter(self, total: int, what: str) -> Counter:
        """A counter of ``total`` steps of ``what`` within the current stage."""
        return Counter()

    def child_spec(self) -> dict[str, Any] | None:
        """What a worker process of the current run (torchrun's rank 0) needs to show its
        stages as this reporter would (``from_spec``); None: it shows nothing (a live terminal
        line must not be drawn over by another process)."""
        return None

    # -- what subclasses show -------------------------------------------------------------
    def _on_matrix(self, skipped: int) -> None: ...

    def _on_matrix_end(self, elapsed: float) -> None: ...

    def _on_run_start(self) -> None: ...

    def _on_run_end(self, status: str, elapsed: float) -> None: ...

    def _on_stage_start(self, name: str) -> None: ...

    def _on_stage_end(self, name: str, elapsed: float) -> None: ...

    def _matrix_line(self, skipped: int) -> str:
        text = f"matrix: {self.total} runs planned"
        if skipped:
            text += f" ({skipped} skipped entries not counted)"
        return f"{text}{SEP}{self.eta.describe()}"

    def _end_line(self, elapsed: float) -> str:
        done = len(self.eta.measured)
        ratio = self.eta.ratio
        text = f"matrix: {done} of {self.total} runs in {seconds_text(elapsed)}"
        if ratio is not None:
            text += f" (measured / cost model {ratio:.2g})"
        return text


class _TrackedCounter(Counter):
    """A count that shows nothing itself and keeps the reporter's ETA informed."""

    def __init__(self, reporter: Reporter, total: int) -> None:
        self.reporter = reporter
        reporter._counted(total)

    def update(self, n: int = 1) -> None:
        self.reporter._advance(n)


class _LineCounter(Counter):
    """A count shown as a plain line at most every ``every`` seconds (a CI log's bar)."""

    def __init__(self, reporter: LineReporter, total: int, what: str, every: float) -> None:
        self.reporter, self.total, self.what, self.every = reporter, total, what, every
        self.done = 0
        self.started = self.last = reporter.clock()
        reporter._counted(total)

    def update(self, n: int = 1) -> None:
        self.done += n
        self.reporter._advance(n)
        now = self.reporter.clock()
        if now - self.last >= self.every and self.done < self.total:
            self.last = now
            elapsed = now - self.started
            left = self.reporter.count_left()
            self.reporter.write(f"{self.reporter.prefix()}{SEP}{self.what} {self.done}/"
                                f"{self.total}{SEP}{seconds_text(elapsed)} (this stage "
                                f"~{seconds_text(left)} more){SEP}{self.reporter.eta_text()}")


class LineReporter(Reporter):
    """Plain lines for a log: one per run start, finished stage and run end; no ``\\r``.

    ``write`` takes one line (no newline); ``counts_every``: seconds between the lines of a
    long count (None: none, as under ``--no-progress``).
    """

    def __init__(self, write: Callable[[str], None], counts_every: float | None = 60.0,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(clock)
        self.write = write
        self.counts_every = counts_every

    def counter(self, total: int, what: str) -> Counter:
        if self.run is None:
            return Counter()
        if self.counts_every is None:  # no lines, but the ETA still follows the count
            return _TrackedCounter(self, total)
        return _LineCounter(self, total, what, self.counts_every)

    def child_spec(self) -> dict[str, Any] | None:
        if self.run is None:
            return None
        return {"prefix": self.prefix(), "counts_every": self.counts_every}

    def _on_matrix(self, skipped: int) -> None:
        self.write(self._matrix_line(skipped))

    def _on_matrix_end(self, elapsed: float) -> None:
        self.write(self._end_line(elapsed))

    def _on_run_start(self) -> None:
        self.write(f"{self.prefix()}{SEP}start{SEP}{self.eta_text()}")

    def _on_stage_end(self, name: str, elapsed: float) -> None:
        self.write(f"{self.prefix()}{SEP}{name}{SEP}{seconds_text(elapsed)}")

    def _on_run_end(self, status: str, elapsed: float) -> None:
        eta = "" if status == "stopped" else f"{SEP}{self.eta_text()}"  # nothing more will run
        self.write(f"{self.prefix()}{SEP}{status}{SEP}{seconds_text(elapsed)}{eta}")


class _BarCounter(Counter):
    def __init__(self, bar: Any, reporter: Reporter, total: int) -> None:
        self.bar, self.reporter = bar, reporter
        reporter._counted(total)

    def update(self, n: int = 1) -> None:
        self.reporter._advance(n)
        self.bar.update(n)

    def set_postfix(self, refresh: bool = False, **values: Any) -> None:
        self.reporter_values = values  # shown at the next redraw with the ETA

    def close(self) -> None:
        """The bar stays until the next stage replaces it."""


class LiveReporter(Reporter):
    """A terminal: one redrawn status line (run, stage, bar, ETA) and a line per finished run.

    ``refresh_s``: how often a thread redraws the line (the clock and the ETA move in stages
    without a count); 0 for none (tests).
    """

    bars = True

    def __init__(self, stream: TextIO, refresh_s: float = 1.0,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(clock)
        self.stream = stream
        self.refresh_s = refresh_s
        self._bar: Any = None
        self._counter: _BarCounter | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def write(self, line: str) -> None:
        """A permanent line above the status line."""
        from tqdm import tqdm

        with self._lock:
            tqdm.write(line, file=self.stream)

    def counter(self, total: int, what: str) -> Counter:
        if self.run is None:
            return Counter()
        with self._lock:
            self._open(f"{self.prefix()}{SEP}{what}", total)
            self._counter = _BarCounter(self._bar, self, total)
            return self._counter

    def _open(self, desc: str, total: int | None) -> None:
        from tqdm import tqdm

        self._close_bar()
        if total is None:
            form = "{desc}" + SEP + "{elapsed}{postfix}"
        else:
            form = ("{desc} {n_fmt}/{total_fmt} |{bar}| {elapsed}<{remaining}{postfix}")
        # A terminal that reports no size (a pty opened by `script`, some CI runners) would get
        # no bar at all from tqdm's width of -1: draw it at $COLUMNS or 100 columns then.
        sized = _columns(self.stream) > 0
        self._bar = tqdm(total=total, desc=desc, file=self.stream, leave=False,
                         dynamic_ncols=sized, ncols=None if sized else _fallback_columns(),
                         nrows=None if sized else 24,
                         mininterval=0.2, bar_format=form)
        self._bar.set_postfix_str(self.eta_text(short=True), refresh=True)
        self._ensure_thread()

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar, self._counter = None, None

    def _redraw(self) -> None:
        with self._lock:
            if self._bar is None:
                return
            extra = ""
            if self._counter is not None and getattr(self._counter, "reporter_values", None):
                extra = ", ".join(f"{k} {v}" for k, v in
                                  self._counter.reporter_values.items()) + ", "
            self._bar.set_postfix_str(extra + self.eta_text(short=True), refresh=True)

    def _ensure_thread(self) -> None:
        if self.refresh_s <= 0 or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()

        def tick() -> None:
            while not self._stop.wait(self.refresh_s):
                self._redraw()

        self._thread = threading.Thread(target=tick, name="qa-bench-progress", daemon=True)
        self._thread.start()

    def _on_matrix(self, skipped: int) -> None:
        self.write(self._matrix_line(skipped))

    def _on_matrix_end(self, elapsed: float) -> None:
        self._stop.set()
        with self._lock:
            self._close_bar()
        self.write(self._end_line(elapsed))

    def _on_run_start(self) -> None:
        with self._lock:
            self._open(f"{self.prefix()}{SEP}start", None)

    def _on_stage_start(self, name: str) -> None:
        with self._lock:
            self._open(f"{self.prefix()}{SEP}{name}", None)

    def _on_run_end(self, status: str, elapsed: float) -> None:
        run = self.run
        stages = ", ".join(f"{name} {seconds_text(s)}" for name, s in run.stages.items()) \
            if run else ""
        with self._lock:
            self._close_bar()
        self.write(f"{self.prefix()}{SEP}{status}{SEP}{seconds_text(elapsed)}"
                   + (f" ({stages})" if stages else "") + f"{SEP}{self.eta_text()}")


class _WorkerReporter(LineReporter):
    """A worker process's part of the parent's current run: its stage lines under the
    parent's ``[k/N] LABEL``; the run's start and end lines are the parent's."""

    def __init__(self, write: Callable[[str], None], spec: dict[str, Any]) -> None:
        super().__init__(write, spec.get("counts_every"))
        self._prefix = str(spec.get("prefix", ""))
        self.run = _Run(0, self._prefix, self.clock())

    def prefix(self) -> str:
        return self._prefix

    def _on_run_start(self) -> None: ...

    def _on_run_end(self, status: str, elapsed: float) -> None: ...


def from_spec(spec: dict[str, Any] | None, stream: TextIO | None = None) -> Reporter:
    """The reporter of a worker process from the parent's ``child_spec`` (quiet for None)."""
    if not spec:
        return Reporter()
    return _WorkerReporter(_printer(stream if stream is not None else sys.stdout), spec)


def _columns(stream: TextIO) -> int:
    """The terminal's width behind ``stream`` (0 when it reports none)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return 0


def _fallback_columns() -> int:
    try:
        return max(int(os.environ.get("COLUMNS", "")), 40)
    except ValueError:
        return 100


def for_stream(stream: TextIO | None = None, bars: bool = True) -> Reporter:
    """The reporter for ``stream`` (stderr by default): live on a terminal unless ``bars`` is
    False (``--no-progress``), lines otherwise (a CI log: a line per long count every 60 s,
    none under ``--no-progress``)."""
    out = stream if stream is not None else sys.stderr
    if bars and _isatty(out):
        return LiveReporter(out)
    return LineReporter(_printer(out), counts_every=60.0 if bars else None)


def _printer(out: TextIO) -> Callable[[str], None]:
    """One line to ``out``, flushed (a log shows it at once); a stream that cannot encode the
    separator (an ASCII-only log) gets a replacement character, never an error."""

    def write(line: str) -> None:
        encoding = getattr(out, "encoding", None) or "utf-8"
        try:
            line.encode(encoding)
        except (UnicodeEncodeError, LookupError):
            line = line.encode(encoding, "replace").decode(encoding, "replace")
        print(line, file=out, flush=True)

    return write


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


_CURRENT: Reporter = Reporter()


def current() -> Reporter:
    """This process's reporter (quiet unless a front end set one)."""
    return _CURRENT


@contextmanager
def use(reporter: Reporter) -> Iterator[Reporter]:
    """Make ``reporter`` this process's reporter inside the block; the matrix ends with it."""
    global _CURRENT
    previous, _CURRENT = _CURRENT, reporter
    try:
        yield reporter
    finally:
        _CURRENT = previous


def stage(name: str) -> None:
    """The pipeline enters stage ``name`` (shown by this process's reporter)."""
    _CURRENT.stage(name)


def end_stages() -> None:
    """The pipeline's last stage ended."""
    _CURRENT.end_stages()


def counter(total: int, what: str, enabled: bool = True) -> Counter:
    """A counter for ``total`` steps of ``what`` (a bar on a terminal, occasional lines in a
    log); ``enabled`` False (another rank, ``progress=False``) shows nothing."""
    return _CURRENT.counter(total, what) if enabled else Counter()
