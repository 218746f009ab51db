"""Run a GitHub Actions workflow's jobs on this machine: the nightly's CPU rehearsal.

    python tools/ci/run_workflow.py .github/workflows/nightly.yml --work DIR \\
        --input profile=nightly-rehearsal --input seeds=1 --input min_shards=2 \\
        --input data_dir=DIR/data --runner-labels self-hosted,linux,ipu-cpu \\
        --standin-venv .venv

`act` needs Docker, which this machine does not have; this runs what the workflow says, not a
copy of it: jobs in `needs` order, each matrix combination of the evaluated `strategy.matrix`
(a `fromJSON` of the plan job's output included), job and step `if:` conditions, `env` at each
level, `${{ }}` expressions (contexts github, inputs, vars, env, matrix, needs, steps; the
functions fromJSON, toJSON, format, contains, always, success, failure, cancelled), every `run:`
step's shell as GitHub runs it (`bash --noprofile --norc -eo pipefail`), GITHUB_ENV,
GITHUB_OUTPUT, GITHUB_PATH and GITHUB_STEP_SUMMARY between steps, and `timeout-minutes` of
steps and jobs. The actions it uses are stood in for: checkout (a copy of this working tree:
tracked and untracked files git does not ignore), setup-python (this machine's python3),
upload-/download-artifact and cache/restore, cache/save (folders under DIR).

A job whose `runs-on` labels are not all in `--runner-labels` (GitHub-hosted `ubuntu-*` always
are) is never picked up: it ends `cancelled`, as GitHub cancels a job queued past its limit
(24 h), here at once. `--unpicked NAME` does the same to one job by its display name (e.g. a
runner that went offline). `QA_BENCH_CPU_STANDIN=1` and `QA_BENCH_STANDIN_VENV` are set for
every step: the workflow's two IPU-only steps (tools/ci/enable-sdk.sh, install-ipu.sh) then
stand in for the SDK and its venv. Matrix jobs run one after another (one machine).

Writes DIR/summary.json (each job's result, outputs and step outcomes) and exits 0 when every
job succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
HOSTED = re.compile(r"^(ubuntu|windows|macos)-")


class WorkflowError(Exception):
    """Something in the workflow this harness cannot run faithfully: stop, never guess."""


# ---------------------------------------------------------------- expressions

_TOKEN = re.compile(r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*')|"
                    r"(?P<op>==|!=|&&|\|\||<=|>=|[<>!()\[\].,])|(?P<name>[A-Za-z_][\w-]*))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise WorkflowError(f"cannot parse expression {text!r} at {text[pos:]!r}")
        kind = match.lastgroup
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", 0.0)


def to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


class _Parser:
    def __init__(self, text: str, context: dict[str, Any]) -> None:
        self.tokens, self.pos, self.context = _tokens(text), 0, context
        self.text = text

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise WorkflowError(f"expression {self.text!r}: expected {value or 'more'}")
        self.pos += 1
        return token

    def parse(self) -> Any:
        value = self.or_()
        if self.peek() is not None:
            raise WorkflowError(f"expression {self.text!r}: unexpected {self.peek()[1]!r}")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            other = self.and_()
            value = value if truthy(value) else other
        return value

    def and_(self) -> Any:
        value = self.compare()
        while self.peek() == ("op", "&&"):
            self.take()
            other = self.compare()
            value = other if truthy(value) else value
        return value

    def compare(self) -> Any:
        value = self.unary()
        token = self.peek()
        if token and token[1] in ("==", "!="):
            self.take()
            other = self.unary()
            same = (str(value).lower() == str(other).lower()
                    if isinstance(value, str) and isinstance(other, str) else value == other)
            return same if token[1] == "==" else not same
        return value

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.take()
            return not truthy(self.unary())
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if text == "(":
            value = self.or_()
            self.take(")")
            return value
        if kind != "name":
            raise WorkflowError(f"expression {self.text!r}: unexpected {text!r}")
        if text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        if self.peek() == ("op", "("):
            self.take()
            args = []
            while self.peek() != ("op", ")"):
                args.append(self.or_())
                if self.peek() == ("op", ","):
                    self.take()
            self.take(")")
            return self.call(text, args)
        if text not in self.context:
            raise WorkflowError(f"expression {self.text!r}: unknown context {text!r}")
        value = self.context[text]
        while self.peek() in (("op", "."), ("op", "[")):
            if self.take()[1] == ".":
                key = self.take()[1]
            else:
                key = self.or_()
                self.take("]")
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def call(self, name: str, args: list[Any]) -> Any:
        status = self.context.get("__status__", "success")
        if name == "fromJSON":
            return json.loads(args[0])
        if name == "toJSON":
            return json.dumps(args[0], indent=2)
        if name == "format":
            return re.sub(r"\{(\d+)\}", lambda m: to_text(args[1 + int(m.group(1))]), args[0])
        if name == "contains":
            hay, needle = args
            return (needle in hay if isinstance(hay, list)
                    else str(needle).lower() in str(hay).lower())
        if name == "always":
            return True
        if name == "success":
            return status == "success"
        if name == "failure":
            return status == "failure"
        if name == "cancelled":
            return status == "cancelled"
        raise WorkflowError(f"expression {self.text!r}: function {name}() is not supported")


def evaluate(text: str, context: dict[str, Any]) -> Any:
    """``${{ expr }}`` → its value."""
    return _Parser(text, context).parse()


_INTERP = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def interpolate(value: Any, context: dict[str, Any]) -> Any:
    """A YAML value with ``${{ }}`` replaced: a whole-value expression keeps its type."""
    if isinstance(value, dict):
        return {k: interpolate(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, context) for v in value]
    if not isinstance(value, str):
        return value
    whole = _INTERP.fullmatch(value.strip())
    if whole and "}}" not in whole.group(1):
        return evaluate(whole.group(1), context)
    return _INTERP.sub(lambda m: to_text(evaluate(m.group(1), context)), value)


def condition(text: Any, context: dict[str, Any]) -> bool:
    """An ``if:`` (``${{ }}`` optional); none means ``success()``."""
    if text is None:
        text = "success()"
    if isinstance(text, bool):
        return text
    text = str(text).strip()
    whole = _INTERP.fullmatch(text)
    expr = whole.group(1) if whole and "}}" not in whole.group(1) else text
    if not re.search(r"\b(always|success|failure|cancelled)\(", expr):
        expr = f"success() && ({expr})"
    return truthy(evaluate(expr, context))


# ---------------------------------------------------------------- files between steps

def read_key_values(path: Path) -> dict[str, str]:
    """GITHUB_ENV / GITHUB_OUTPUT: ``k=v`` lines and ``k<<DELIM`` blocks."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            block = []
            i += 1
            while i < len(lines) and lines[i] != delimiter:
                block.append(lines[i])
                i += 1
            values[key] = "\n".join(block)
        elif "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
        i += 1
    return values


# ---------------------------------------------------------------- the runner

class Runner:
    def __init__(self, workflow: Path, work: Path, inputs: dict[str, str],
                 variables: dict[str, str],
                 labels: set[str], unpicked: set[str], standin_venv: str | None) -> None:
        self.doc = yaml.safe_load(workflow.read_text())
        self.work = work
        self.labels, self.unpicked = labels, unpicked
        self.vars = variables
        self.inputs = self._inputs(inputs)
        self.artifacts = work / "artifacts"
        self.cache = work / "actions-cache"
        self.run_id = str(int(time.time()))
        self.results: dict[str, dict[str, Any]] = {}
        self.base_env = {**os.environ, "CI": "true", "QA_BENCH_CPU_STANDIN": "1"}
        if standin_venv:
            self.base_env["QA_BENCH_STANDIN_VENV"] = standin_venv

    def _inputs(self, given: dict[str, str]) -> dict[str, Any]:
        on = self.doc.get("on", self.doc.get(True, {}))  # YAML 1.1 reads `on` as true
        declared = (on.get("workflow_dispatch") or {}).get("inputs") or {}
        unknown = set(given) - set(declared)
        if unknown:
            raise WorkflowError(f"inputs not declared by workflow_dispatch: {sorted(unknown)}")
        inputs: dict[str, Any] = {}
        for name, spec in declared.items():
            value = given.get(name, spec.get("default", ""))
            if spec.get("type") == "boolean":
                value = value if isinstance(value, bool) else str(value).lower() == "true"
            inputs[name] = value
        return inputs

    def order(self) -> list[str]:
        jobs = self.doc["jobs"]
        done: list[str] = []
        while len(done) < len(jobs):
            ready = [j for j in jobs if j not in done and all(
                n in done for n in _as_list(jobs[j].get("needs")))]
            if not ready:
                raise WorkflowError("the jobs' needs form a cycle")
            done.append(ready[0])
        return done

    def run(self) -> int:
        self.work.mkdir(parents=True, exist_ok=True)
        for job_id in self.order():
            self.run_job(job_id)
        (self.work / "summary.json").write_text(json.dumps(self.results, indent=2))
        print("\n== workflow summary")
        for job_id, result in self.results.items():
            print(f"  {job_id}: {result['result']}  ({result['wall_s']:.0f} s)")
            for run in result["runs"]:
                print(f"    {run['name']}: {run['result']}")
        return 0 if all(r["result"] == "success" for r in self.results.values()) else 1

    def _context(self, job_id: str, matrix: dict[str, Any], env: dict[str, str],
                 steps: dict[str, Any], status: str, workspace: Path) -> dict[str, Any]:
        needs = {n: self.results[n] for n in _as_list(self.doc["jobs"][job_id].get("needs"))}
        return {"github": {"run_id": self.run_id, "workspace": str(workspace),
                           "event_name": "workflow_dispatch", "job": job_id},
                "inputs": self.inputs, "vars": self.vars, "env": env, "matrix": matrix,
                "needs": {n: {"result": r["result"], "outputs": r["outputs"]}
                          for n, r in needs.items()},
                "steps": steps, "secrets": {}, "runner": {"temp": str(self.work / "tmp")},
                "strategy": {}, "__status__": status}

    def run_job(self, job_id: str) -> None:
        job = self.doc["jobs"][job_id]
        started = time.monotonic()
        needs = _as_list(job.get("needs"))
        need_status = ("success" if all(self.results[n]["result"] == "success" for n in needs)
                       else "failure")
        context = self._context(job_id, {}, {}, {}, need_status, self.work)
        record: dict[str, Any] = {"result": "skipped", "outputs": {}, "runs": [], "wall_s": 0.0}
        self.results[job_id] = record
        if not condition(job.get("if"), context):
            print(f"\n== job {job_id}: skipped (if: {job.get('if', 'success()')})")
            return
        combos = self._matrix(job, context)
        for index, matrix in enumerate(combos):
            record["runs"].append(self.run_combo(job_id, job, matrix, index, record))
        results = [r["result"] for r in record["runs"]]
        record["result"] = ("failure" if "failure" in results else
                            "cancelled" if "cancelled" in results else "success")
        record["wall_s"] = time.monotonic() - started

    def _matrix(self, job: dict[str, Any], context: dict[str, Any]) -> list[dict[str, Any]]:
        spec = (job.get("strategy") or {}).get("matrix")
        if spec is None:
            return [{}]
        spec = interpolate(spec, context)
        if not isinstance(spec, dict):
            raise WorkflowError(f"matrix is not a mapping: {spec!r}")
        include = spec.pop("include", []) or []
        spec.pop("exclude", None)
        axes = {k: v for k, v in spec.items()}
        combos = [dict(zip(axes, values, strict=True))
                  for values in itertools.product(*axes.values())] if axes else []
        return combos + [dict(item) for item in include] or [{}]

    def run_combo(self, job_id: str, job: dict[str, Any], matrix: dict[str, Any], index: int,
                  record: dict[str, Any]) -> dict[str, Any]:
        workspace = self.work / "jobs" / f"{job_id}-{index + 1}"
        if workspace.exists():
            shutil.rmtree(workspace)
        workspace.mkdir(parents=True)
        (self.work / "tmp").mkdir(exist_ok=True)
        files = {name: workspace.parent / f"{job_id}-{index + 1}.{name.lower()}"
                 for name in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH",
                              "GITHUB_STEP_SUMMARY")}
        for path in files.values():
            path.write_text("")
        env: dict[str, str] = {}
        steps: dict[str, Any] = {}
        context = self._context(job_id, matrix, env, steps, "success", workspace)
        name = to_text(interpolate(job.get("name", job_id), context))
        labels = [to_text(x) for x in _as_list(interpolate(job.get("runs-on"), context))]
        run = {"name": name, "matrix": matrix, "labels": labels, "steps": [],
               "summary": str(files["GITHUB_STEP_SUMMARY"]), "workspace": str(workspace)}
        missing = [x for x in labels if x not in self.labels and not HOSTED.match(x)]
        if missing or name in self.unpicked:
            why = (f"no runner has the label(s) {missing}" if missing
                   else "its runner never picked it up (--unpicked)")
            print(f"\n== job {name}: queued, {why}: cancelled as GitHub does after its queue "
                  "limit (24 h), here at once")
            run["result"] = "cancelled"
            return run
        print(f"\n== job {name} (runs-on {labels}, workspace {workspace})")
        for level in (self.doc.get("env") or {}, job.get("env") or {}):
            for key, value in level.items():
                env[key] = to_text(interpolate(value, {**context, "env": dict(env)}))
        job_limit = _minutes(interpolate(job.get("timeout-minutes", 360), context))
        deadline = time.monotonic() + job_limit * 60
        status = "success"
        path_prefix: list[str] = []
        for number, step in enumerate(job.get("steps") or [], start=1):
            context = self._context(job_id, matrix, dict(env), steps, status, workspace)
            label = step.get("name") or step.get("uses") or f"step {number}"
            label = to_text(interpolate(label, context))
            if not condition(step.get("if"), context):
                run["steps"].append({"name": label, "outcome": "skipped"})
                continue
            step_env = dict(env)
            for key, value in (step.get("env") or {}).items():
                step_env[key] = to_text(interpolate(value, {**context, "env": dict(step_env)}))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                status = "failure"
                run["steps"].append({"name": label, "outcome": "timed out (job)"})
                print(f"-- {label}: job timeout-minutes ({job_limit}) reached")
                continue
            if "timeout-minutes" in step:
                remaining = min(remaining, _minutes(interpolate(step["timeout-minutes"],
                                                                context)) * 60)
            started = time.monotonic()
            if "run" in step:
                outcome = self._shell(label, step, context, step_env, files, workspace,
                                      path_prefix, remaining)
            else:
                outcome = self._action(label, step, context, workspace)
            run["steps"].append({"name": label, "outcome": outcome,
                                 "wall_s": round(time.monotonic() - started, 1)})
            if step.get("id"):
                steps[step["id"]] = {"outputs": read_key_values(files["GITHUB_OUTPUT"]),
                                     "outcome": outcome}
            files["GITHUB_OUTPUT"].write_text("")
            env.update(read_key_values(files["GITHUB_ENV"]))
            files["GITHUB_ENV"].write_text("")
            path_prefix = [p for p in files["GITHUB_PATH"].read_text().splitlines() if p] + \
                path_prefix
            files["GITHUB_PATH"].write_text("")
            if outcome != "success":
                status = "failure"
        context = self._context(job_id, matrix, env, steps, status, workspace)
        record["outputs"].update({k: to_text(interpolate(v, context))
                                  for k, v in (job.get("outputs") or {}).items()})
        run["result"] = status
        summary = files["GITHUB_STEP_SUMMARY"].read_text()
        if summary.strip():
            print(f"-- job summary of {name}:\n{summary.rstrip()}")
        return run

    def _shell(self, label: str, step: dict[str, Any], context: dict[str, Any],
               env: dict[str, str], files: dict[str, Path], workspace: Path,
               path_prefix: list[str], limit_s: float) -> str:
        if step.get("shell") not in (None, "bash"):
            raise WorkflowError(f"step {label!r}: shell {step['shell']!r} is not supported")
        script = to_text(interpolate(step["run"], context))
        script_path = workspace.parent / f"step-{time.monotonic_ns()}.sh"
        script_path.write_text(script)
        full_env = {**self.base_env, **env, **{k: str(v) for k, v in files.items()},
                    "GITHUB_WORKSPACE": str(workspace), "RUNNER_TEMP": str(self.work / "tmp"),
                    "GITHUB_RUN_ID": self.run_id}
        if path_prefix:
            full_env["PATH"] = os.pathsep.join([*path_prefix, full_env.get("PATH", "")])
        cwd = workspace / step.get("working-directory", ".")
        print(f"-- {label}")
        proc = subprocess.Popen(["bash", "--noprofile", "--norc", "-eo", "pipefail",
                                 str(script_path)], cwd=cwd, env=full_env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=limit_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 15)
            out, _ = proc.communicate()
            print(_indent(out))
            print(f"   (timed out after {limit_s / 60:.1f} min)")
            return "timed out"
        print(_indent(out))
        print(f"   (exit {proc.returncode})")
        return "success" if proc.returncode == 0 else f"failure (exit {proc.returncode})"

    def _action(self, label: str, step: dict[str, Any], context: dict[str, Any],
                workspace: Path) -> str:
        uses = step["uses"]
        action = uses.split("@", 1)[0]
        args = {k: to_text(v) for k, v in interpolate(step.get("with") or {}, context).items()}
        print(f"-- {label} (stand-in for {uses})")
        if action == "actions/checkout":
            listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"],
                                    cwd=ROOT, capture_output=True, check=True).stdout
            for name in filter(None, listed.decode().split("\0")):
                source = ROOT / name
                if source.is_file():
                    target = workspace / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)
            return "success"
        if action == "actions/setup-python":
            print(f"   python3 of this machine ({sys.version.split()[0]}) stands in for "
                  f"{args.get('python-version', '?')}")
            return "success"
        if action == "actions/upload-artifact":
            source = workspace / args["path"]
            target = self.artifacts / args["name"]
            if not source.exists():
                print(f"   no files at {args['path']}: nothing uploaded "
                      f"(if-no-files-found: {args.get('if-no-files-found', 'warn')})")
                return ("failure (no files)" if args.get("if-no-files-found") == "error"
                        else "success")
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(source, target) if source.is_dir() else \
                (target.mkdir(parents=True), shutil.copy2(source, target / source.name))
            print(f"   uploaded {args['path']} as artifact {args['name']}")
            return "success"
        if action == "actions/download-artifact":
            into = workspace / args.get("path", ".")
            names = sorted(p.name for p in self.artifacts.iterdir()) \
                if self.artifacts.exists() else []
            chosen = [n for n in names if fnmatch.fnmatch(n, args.get("pattern", "*"))]
            for name in chosen:
                shutil.copytree(self.artifacts / name, into / name, dirs_exist_ok=True)
            print(f"   downloaded {len(chosen)} artifact(s): {', '.join(chosen) or 'none'}")
            return "success"
        if action in ("actions/cache/restore", "actions/cache/save"):
            key, path = args["key"], workspace / args["path"]
            if action.endswith("save"):
                if path.exists():
                    shutil.copytree(path, self.cache / key, dirs_exist_ok=True)
                    print(f"   saved {args['path']} under key {key}")
                return "success"
            keys = sorted((p for p in self.cache.iterdir()), key=lambda p: p.stat().st_mtime,
                          reverse=True) if self.cache.exists() else []
            prefixes = [key] + [x.strip() for x in args.get("restore-keys", "").splitlines()
                                if x.strip()]
            for prefix in prefixes:
                hit = next((p for p in keys if p.name == prefix or p.name.startswith(prefix)),
                           None)
                if hit is not None:
                    shutil.copytree(hit, path, dirs_exist_ok=True)
                    print(f"   restored {args['path']} from key {hit.name}")
                    return "success"
            print("   cache miss")
            return "success"
        raise WorkflowError(f"step {label!r}: no stand-in for action {uses}")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _minutes(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise WorkflowError(f"timeout-minutes {value!r} is not a number") from exc


def _indent(text: str) -> str:
    return "\n".join(f"   | {line}" for line in text.rstrip().splitlines())


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise WorkflowError(f"--{what} expects NAME=VALUE, got {item!r}")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workflow", type=Path)
    parser.add_argument("--work", type=Path, required=True, help="folder for jobs and artifacts")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                        help="a repository variable (vars.NAME)")
    parser.add_argument("--runner-labels", default="self-hosted,linux",
                        help="labels of the self-hosted runners that exist (comma-separated)")
    parser.add_argument("--unpicked", action="append", default=[], metavar="JOB NAME",
                        help="a job no runner picks up (its display name)")
    parser.add_argument("--standin-venv", help="QA_BENCH_STANDIN_VENV for install-ipu.sh")
    args = parser.parse_args(argv)
    try:
        runner = Runner(args.workflow, args.work.resolve(), _pairs(args.input, "input"),
                        _pairs(args.var, "var"), set(args.runner_labels.split(",")),
                        set(args.unpicked), args.standin_venv)
        return runner.run()
    except WorkflowError as exc:
        print(f"run_workflow.py: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
