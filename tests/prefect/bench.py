"""Times the Prefect side of the side-by-side benchmark.

Run it with the virtualenv that tests/prefect/install.sh makes:

    tests/prefect/install.sh && target/prefect/venv/bin/python tests/prefect/bench.py

Each workload in tests/prefect/flows/ is run as a new Prefect user runs it,
`python <flow file>`, and the whole process is timed (wall clock), in two modes:

- temporary: no PREFECT_API_URL and a fresh PREFECT_HOME, so Prefect starts
  its temporary server in a subprocess for every run (its default);
- server: against one `prefect server start` that runs for the whole mode.

Each mode first runs one unmeasured warm-up (the etl flow), so that the
first-ever import and the database migration are not counted.

Writes target/bench/results/prefect.json (see --out) and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FLOWS = HERE / "flows"

# Seconds the unmeasured warm-up of the temporary mode may take to start its
# server: the first start migrates a new database, which on a busy machine can
# take longer than Prefect's default of 20 s. Measured runs keep the default.
WARMUP_STARTUP_TIMEOUT = 180
SERVER_READY_TIMEOUT = 240
SAMPLE_INTERVAL = 0.05
# A running server counts as idle when it used less than this share of one
# core over a window (it uses about 4 % when nothing runs).
SETTLE_IDLE_CPU = 0.15
SETTLE_WINDOW = 1.0
SETTLE_TIMEOUT = 300
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Workload:
    name: str
    id: str
    script: str
    args: tuple[str, ...]
    runs: int
    what: str


WORKLOADS = [
    Workload("etl", "compare.etl", "etl.py", (), 5,
             "the etl flow: one `python etl.py` process"),
    Workload("tasks_1000", "compare.tasks_1000", "tasks_1000.py", (), 5,
             "a flow calling a trivial task 1,000 times sequentially: one `python tasks_1000.py` process"),
    Workload("fibo10x40", "compare.windmill.fibo10x40", "windmill.py", ("fibo10x40",), 5,
             "Windmill's benchmark, 40 sequential tasks each computing fibo(10): one `python windmill.py fibo10x40` process"),
    Workload("fibo33x10", "compare.windmill.fibo33x10", "windmill.py", ("fibo33x10",), 3,
             "Windmill's benchmark, 10 sequential tasks each computing fibo(33): one `python windmill.py fibo33x10` process"),
    Workload("light400", "compare.windmill.light400", "windmill.py", ("light400",), 5,
             "Windmill's benchmark, 400 sequential lightweight tasks: one `python windmill.py light400` process"),
]
BY_NAME = {w.name: w for w in WORKLOADS}
MODES = {"temporary": "prefect-temporary-server", "server": "prefect-running-server"}


class BenchError(Exception):
    pass


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def rel(path: Path | str) -> str:
    """A path as a reader at the repository root would type it."""
    p = Path(path)
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


def clean_env(home: Path, api_url: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any PREFECT_* setting, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(home)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env.update(extra or {})
    return env


# ---------------------------------------------------------------- processes

def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    out.extend(int(x) for x in f.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return out


def _hwm_kib(pid: int) -> int | None:
    """The process's peak resident set (VmHWM) so far, in KiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class TreeSampler(threading.Thread):
    """Samples the peak RSS of a process and of each of its descendants."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.stop = threading.Event()
        self.root_hwm = 0
        self.descendants: dict[int, int] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(SAMPLE_INTERVAL)

    def sample(self) -> None:
        hwm = _hwm_kib(self.pid)
        if hwm:
            self.root_hwm = max(self.root_hwm, hwm)
        todo = _children(self.pid)
        while todo:
            pid = todo.pop()
            hwm = _hwm_kib(pid)
            if hwm:
                self.descendants[pid] = max(self.descendants.get(pid, 0), hwm)
            todo.extend(_children(pid))


@contextlib.contextmanager
def signals_held():
    """Holds Ctrl-C and SIGTERM off while clean-up runs, then restores them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def kill_group(pgid: int, grace: float = 5.0, leader: subprocess.Popen | None = None) -> None:
    """Stops a whole process group: SIGTERM, then SIGKILL after `grace`.

    `leader`, when the group's leader is our own child, is reaped as it
    exits, so that it does not linger as a zombie in the group.
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if leader is not None:
            leader.poll()
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclass
class Run:
    wall_ms: float
    flow_rss_kib: int
    server_rss_kib: int | None  # the temporary server's, when the flow started one
    server_busy_s: float = 0.0  # how long a running server stayed busy after the run


def run_flow(argv: list[str], env: dict[str, str], workdir: Path, label: str) -> Run:
    """Runs one flow process to its end, timing it and sampling its memory."""
    out_path = workdir / "run.out"
    err_path = workdir / "run.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, start_new_session=True)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        try:
            _, status, rusage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
        except BaseException:
            sampler.stop.set()
            with signals_held():
                kill_group(proc.pid, grace=5.0, leader=proc)
                proc.wait()
            raise
        finally:
            sampler.stop.set()
            sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    # Anything the flow left behind in its group (a temporary server that
    # outlived it) is stopped, so that no run leaks into the next.
    try:
        os.killpg(proc.pid, 0)
        log(f"{label}: processes outlived the flow; stopping them")
        kill_group(proc.pid)
    except ProcessLookupError:
        pass
    if proc.returncode != 0:
        stderr = err_path.read_text(errors="replace")
        stdout = out_path.read_text(errors="replace")
        lines = (stdout + "\n" + stderr).strip().splitlines()
        tail = "\n".join(lines[-200:])
        hint = ""
        if "Timed out while attempting to connect to ephemeral" in stderr:
            hint = ("\n(the temporary server took longer than Prefect's start-up timeout; "
                    "on a busy machine, pass --ephemeral-startup-timeout 120)")
        raise BenchError(f"{label}: `{shlex.join(argv)}` exited {proc.returncode}; "
                         f"its output:\n{tail}{hint}")
    if sampler.descendants:
        # wait4 would count the temporary server (a waited-for child of the
        # flow process) in the flow's peak: use the sampled figures instead.
        flow_rss = sampler.root_hwm
        server_rss = sum(sampler.descendants.values())
    else:
        flow_rss = rusage.ru_maxrss  # KiB on Linux
        server_rss = None
    return Run(round(wall * 1000, 1), flow_rss, server_rss)


# ---------------------------------------------------------------- the server

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`prefect server start` in its own process group, until stop()."""

    def __init__(self, prefect: Path, home: Path, workdir: Path):
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.log_path = workdir / "server.log"
        self.argv = [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)]
        self.env = clean_env(home)
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        log(f"starting `prefect server start --host 127.0.0.1 --port {self.port}`")
        start = time.perf_counter()
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + SERVER_READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"the server exited {self.proc.returncode} before it was ready:\n"
                                 + self.log_path.read_text(errors="replace")[-8000:])
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as r:
                    if r.status == 200:
                        ready = time.perf_counter() - start
                        log(f"server ready after {ready:.1f} s")
                        return ready
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise BenchError(f"the server did not answer /api/health within {SERVER_READY_TIMEOUT} s:\n"
                         + self.log_path.read_text(errors="replace")[-8000:])

    def peak_rss_kib(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None
        total = _hwm_kib(self.proc.pid) or 0
        todo = _children(self.proc.pid)
        while todo:
            pid = todo.pop()
            total += _hwm_kib(pid) or 0
            todo.extend(_children(pid))
        return total or None

    def _cpu_seconds(self) -> float:
        """CPU time the server's processes have used so far."""
        total = 0.0
        todo = [self.proc.pid] if self.proc else []
        while todo:
            pid = todo.pop()
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            except (OSError, IndexError, ValueError):
                pass
            todo.extend(_children(pid))
        return total

    def settle(self) -> float:
        """Waits until the server is idle again; returns how long that took.

        After a flow run the server goes on recording its events for a while
        (a minute and more after a thousand tasks on a busy machine); a next
        run started meanwhile competes with that work for the cores and for
        the SQLite database, and can fail with 503s. So each measured run
        starts on an idle server.
        """
        start = time.perf_counter()
        deadline = time.monotonic() + SETTLE_TIMEOUT
        before = self._cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(SETTLE_WINDOW)
            now = self._cpu_seconds()
            if now - before < SETTLE_IDLE_CPU * SETTLE_WINDOW:
                break
            before = now
        else:
            log(f"the server was still busy after {SETTLE_TIMEOUT} s; going on")
        # The last window was the idle one.
        return max(0.0, time.perf_counter() - start - SETTLE_WINDOW)

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        log("stopping the server")
        with signals_held():
            kill_group(self.proc.pid, grace=10.0, leader=self.proc)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None


# ---------------------------------------------------------------- the bench

def stats(samples: list[float]) -> dict:
    return {
        "median": round(statistics.median(samples), 1),
        "min": round(min(samples), 1),
        "max": round(max(samples), 1),
    }


def median_int(values: list[int]) -> int:
    return int(round(statistics.median(values)))


def bench_mode(mode: str, workloads: list[Workload], runs: int | None, python: Path,
               prefect: Path, startup_timeout: int | None) -> list[dict]:
    system = MODES[mode]
    figures: list[dict] = []
    workdir = Path(tempfile.mkdtemp(prefix=f"prefect-bench-{mode}-"))
    home = workdir / "home"
    home.mkdir()
    server: Server | None = None
    try:
        extra: dict[str, str] = {}
        if mode == "server":
            server = Server(prefect, home, workdir)
            server.start()
            env = clean_env(home, api_url=server.api_url)
        else:
            if startup_timeout:
                extra["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = str(startup_timeout)
            env = clean_env(home, extra=extra)

        warm = BY_NAME["etl"]
        log(f"{system}: warm-up run of {warm.script} (not measured)")
        warm_env = dict(env)
        if mode == "temporary":
            warm_env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = str(WARMUP_STARTUP_TIMEOUT)
        run_flow([str(python), str(FLOWS / warm.script)], warm_env, workdir, f"{system} warm-up")
        if server is not None:
            server.settle()

        for w in workloads:
            n = runs or w.runs
            argv = [str(python), str(FLOWS / w.script), *w.args]
            results: list[Run] = []
            for i in range(n):
                r = run_flow(argv, env, workdir, f"{system} {w.name} run {i + 1}")
                if server is not None:
                    r.server_busy_s = server.settle()
                results.append(r)
                log(f"{system} {w.name} run {i + 1}/{n}: {r.wall_ms:.1f} ms, "
                    f"flow process {r.flow_rss_kib / 1024:.0f} MiB"
                    + (f", temporary server {r.server_rss_kib / 1024:.0f} MiB" if r.server_rss_kib else "")
                    + (f"; the server was busy {r.server_busy_s:.1f} s more" if server else ""))
            figures.append(figure(w, mode, results, python, server, extra))
    except BenchError as e:
        if server is not None:
            e.args = (f"{e.args[0]}\n--- the end of the server's log ---\n{server.log_tail()}",)
        raise
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


def figure(w: Workload, mode: str, results: list[Run], python: Path, server: Server | None,
           extra: dict[str, str]) -> dict:
    run_cmd = shlex.join([rel(python), rel(FLOWS / w.script), *w.args])
    settings = "".join(f"{k}={v} " for k, v in extra.items())
    if mode == "temporary":
        what = (f"{w.what}, wall time; Prefect starts its temporary server in a subprocess of it "
                f"for every run (peak_rss_kib is the flow process alone, server_peak_rss_kib the "
                f"temporary server's); one PREFECT_HOME per mode, made fresh and warmed by one "
                f"unmeasured run so that the first import and the database migration are not counted")
        warm_cmd = shlex.join([rel(python), rel(FLOWS / "etl.py")])
        command = (f"export PREFECT_HOME=$(mktemp -d) && {warm_cmd} >/dev/null 2>&1 && "
                   f"time {settings}{run_cmd}")
    else:
        assert server is not None
        what = (f"{w.what}, wall time, against a server started once with `prefect server start` "
                f"(server_peak_rss_kib is that server's peak RSS since it started, read after "
                f"this workload); one unmeasured warm-up run per mode first; after each run the "
                f"server stayed busy (recording the run's events) for a median "
                f"{statistics.median(r.server_busy_s for r in results):.1f} s more, not counted, "
                f"and the next run started once it was idle again")
        command = (f"PREFECT_API_URL={server.api_url} {run_cmd}  "
                   f"# with `{rel(server.argv[0])} server start --host 127.0.0.1 --port {server.port}` "
                   f"running (its own PREFECT_HOME)")
    samples = [r.wall_ms for r in results]
    fig = {
        "id": w.id,
        "system": MODES[mode],
        "what": what,
        "unit": "ms",
        "samples": samples,
        **stats(samples),
        "peak_rss_kib": median_int([r.flow_rss_kib for r in results]),
        "command": command,
    }
    if mode == "temporary":
        server_rss = [r.server_rss_kib for r in results if r.server_rss_kib]
        if server_rss:
            fig["server_peak_rss_kib"] = median_int(server_rss)
    elif server is not None:
        rss = server.peak_rss_kib()
        if rss:
            fig["server_peak_rss_kib"] = rss
    return fig


def print_table(figures: list[dict]) -> None:
    head = f"{'id':<30} {'system':<26} {'median ms':>10} {'min ms':>10} {'max ms':>10} {'n':>2} {'flow MiB':>8} {'server MiB':>10}"
    print(head)
    print("-" * len(head))
    for f in figures:
        server = f.get("server_peak_rss_kib")
        print(f"{f['id']:<30} {f['system']:<26} {f['median']:>10.1f} {f['min']:>10.1f} {f['max']:>10.1f} "
              f"{len(f['samples']):>2} {f['peak_rss_kib'] / 1024:>8.0f} "
              f"{(f'{server / 1024:.0f}' if server else '-'):>10}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=None,
                   help="measured runs of each workload per mode (default: 5, and 3 for fibo33x10)")
    p.add_argument("--only", default=None,
                   help="comma-separated workloads: " + ",".join(BY_NAME))
    p.add_argument("--modes", default="temporary,server",
                   help="comma-separated modes: temporary,server (default: both)")
    p.add_argument("--out", default=str(ROOT / "target/bench/results/prefect.json"),
                   help="where to write the JSON (default: target/bench/results/prefect.json)")
    p.add_argument("--ephemeral-startup-timeout", type=int, default=None, metavar="SECONDS",
                   help="set PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS for the measured "
                        "temporary-server runs (default: Prefect's own, 20 s); for busy machines")
    args = p.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        p.error("--runs must be at least 1")
    names = args.only.split(",") if args.only else list(BY_NAME)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        p.error(f"unknown workload(s) {','.join(unknown)}; known: {','.join(BY_NAME)}")
    args.workloads = [BY_NAME[n] for n in BY_NAME if n in names]
    modes = args.modes.split(",")
    bad = [m for m in modes if m not in MODES]
    if bad:
        p.error(f"unknown mode(s) {','.join(bad)}; known: temporary,server")
    args.mode_list = [m for m in MODES if m in modes]
    return args


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        version = importlib.metadata.version("prefect")
    except importlib.metadata.PackageNotFoundError:
        log(f"prefect is not installed for {sys.executable}; run tests/prefect/install.sh and use "
            f"target/prefect/venv/bin/python")
        return 2
    python = Path(sys.executable)
    prefect = python.parent / "prefect"
    if not prefect.exists():
        log(f"no `prefect` command beside {python}")
        return 2
    # Ctrl-C and SIGTERM end the bench through its clean-up, even where the
    # shell that started it in the background made it ignore SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_sigterm)
    log(f"prefect {version}, {os.cpu_count()} cores; modes {','.join(args.mode_list)}; "
        f"workloads {','.join(w.name for w in args.workloads)}")
    started = time.perf_counter()
    figures: list[dict] = []
    try:
        for mode in args.mode_list:
            figures.extend(bench_mode(mode, args.workloads, args.runs, python, prefect,
                                      args.ephemeral_startup_timeout))
    except BenchError as e:
        log(f"FAILED: {e}")
        return 1
    except KeyboardInterrupt:
        log("interrupted; stopped what it had started")
        return 130
    doc = {
        "source": "prefect",
        "date": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        .isoformat().replace("+00:00", "Z"),
        "cores": os.cpu_count(),
        "prefect_version": version,
        "figures": figures,
    }
    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print_table(figures)
    log(f"wrote {rel(out)} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
