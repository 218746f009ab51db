"""A run's exit code, decided once for ``run``, ``report``, ``merge`` and the pytest session.

An exit 0 means something was judged and held. The codes (also in ``qa-bench --help``):

- ``0`` at least one gate judged a metric, and no gate failed, no entry failed, none is missing
  and none was measured on work its baseline was not (``not_comparable``);
- ``1`` a gate failed, an entry did not finish, or an entry the run was asked for is missing;
- ``2`` bad usage or input, refused before any work (``qa.errors.QABenchError``);
- ``5`` nothing was judged: every entry skipped, without a baseline, measured on other hardware
  only, or not comparable with its baseline — pytest's "no tests collected" code, which CI
  treats as a failure for the same reason;
- ``128 + N`` stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP; ``qa.run.stopping``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NOTHING_JUDGED = 0, 1, 2, 5

#: Verdicts that judged a metric (a failure was judged too).
JUDGED = ("pass", "improved", "fail")


@dataclass(frozen=True)
class Outcome:
    """The exit code and one line saying why."""

    code: int
    reason: str


def decide(results: Sequence[Any], verdicts: Iterable[Any], missing: Sequence[str] = (),
           skipped: Sequence[str] = ()) -> Outcome:
    """The outcome of a judged run.

    Args:
        results: the RunResults (their ``status``: ``ok`` or why not).
        verdicts: every gate verdict (``status`` one of ``qa.gating.verdicts.VERDICTS``).
        missing: entries the run was asked for that delivered no result.
        skipped: entries skipped before running (their hardware, data or model is absent).
    """
    verdicts = list(verdicts)
    failed_gates = [v for v in verdicts if v.status == "fail"]
    unfinished = [r for r in results if r.status != "ok"]
    if failed_gates or unfinished or missing:
        parts = [f"{len(failed_gates)} gate(s) failed" if failed_gates else "",
                 f"{len(unfinished)} entr{'y' if len(unfinished) == 1 else 'ies'} did not "
                 "finish" if unfinished else "",
                 f"{len(missing)} entr{'y' if len(missing) == 1 else 'ies'} missing"
                 if missing else ""]
        return Outcome(EXIT_FAIL, ", ".join(p for p in parts if p))
    unlike = sorted({v.entry for v in verdicts if v.status == "not_comparable"})
    if unlike:
        return Outcome(EXIT_NOTHING_JUDGED,
                       f"not comparable with its baseline: {', '.join(unlike)} (different data "
                       "or settings: see the report); the run is not green")
    judged = [v for v in verdicts if v.status in JUDGED]
    if not judged:
        if not results:
            return Outcome(EXIT_NOTHING_JUDGED, f"nothing was judged: every entry was skipped "
                                                f"({len(skipped)})" if skipped else
                           "nothing was judged: no entry ran")
        statuses = sorted({v.status for v in verdicts}) or ["no metric"]
        return Outcome(EXIT_NOTHING_JUDGED,
                       f"nothing was judged: no gate applied to the {len(results)} finished "
                       f"entr{'y' if len(results) == 1 else 'ies'} ({', '.join(statuses)})"
                       + (f", {len(skipped)} skipped" if skipped else ""))
    entries = len({v.entry for v in judged})
    return Outcome(EXIT_OK, f"{len(judged)} gate(s) judged over {entries} "
                            f"entr{'y' if entries == 1 else 'ies'}, all held")
