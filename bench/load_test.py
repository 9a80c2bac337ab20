"""Load test of a real ``mfmkg serve`` process: many concurrent clients sending a mix of read requests.

It starts ``mfmkg serve --memory --sample`` (``--store disk``: on a fresh data directory) on a free loopback
port (or uses ``--url`` of a running service), reads the named queries' parameters and the resource ids from the
service itself, then runs ``--clients`` threads that each send ``--requests`` requests, drawn at random (seeded)
from:

  named   /queries/NAME.json with random valid parameters (term and enum values from /queries, booleans,
          years, search words; optional parameters sometimes left out)
  sparql  /sparql by GET, POST form and POST application/sparql-query, a few SELECT/ASK/CONSTRUCT queries,
          in a random acceptable result format; half of them made unique by a comment, so that they are
          evaluated (in a query process) rather than answered by a result cache
  ui      the dashboard / and /ui/threats
  item    /threats/ID and /attacks/ID as JSON, or their HTML pages /ui/threats/ID and /ui/attacks/ID

Every answer must be a 200 with the expected media type (and, for JSON, a body that parses); anything else,
a connection error or a client timeout is an error. At the end it prints the latency percentiles (p50, p95,
p99, max) overall and per kind, the throughput and the error count, checks that the server is still alive,
answers, logged no unhandled error and left no query process behind (an in-memory store's reusable query
processes end after ``mfmkg.query_pool.IDLE_SECONDS`` idle), and exits 1 on any error.

    python -m bench.load_test                          # 50 clients x 1,000 requests
    python -m bench.load_test --clients 20 --requests 50
    python -m bench.load_test --store disk             # the server on an on-disk store
    python -m bench.load_test --url http://127.0.0.1:8787   # against a running service

Loopback only: a ``--url`` that is not 127.0.0.1/localhost is refused.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

REPO = Path(__file__).resolve().parent.parent

SPARQL_QUERIES = [
    ("select", "PREFIX mfm: <https://w3id.org/mfmkg/ont#>\n"
               "SELECT ?a ?t WHERE { ?a a mfm:Attack ; a ?t } ORDER BY ?a LIMIT 50"),
    ("select", "PREFIX mfm: <https://w3id.org/mfmkg/ont#>\n"
               "SELECT ?axis (COUNT(?a) AS ?n) WHERE { ?a a mfm:Attack ; mfm:onAxis ?axis } GROUP BY ?axis"),
    ("select", "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
               "SELECT ?s ?l WHERE { ?s rdfs:label ?l FILTER(CONTAINS(LCASE(STR(?l)), \"jailbreak\")) } LIMIT 20"),
    ("select", "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"),
    ("ask", "PREFIX mfm: <https://w3id.org/mfmkg/ont#>\nASK { ?a a mfm:Attack }"),
    ("graph", "PREFIX mfm: <https://w3id.org/mfmkg/ont#>\n"
              "CONSTRUCT { ?a a mfm:Attack } WHERE { ?a a mfm:Attack } LIMIT 30"),
    ("graph", "DESCRIBE <https://w3id.org/mfmkg/id/attack/A01>"),
]
RESULT_TYPES = ["application/sparql-results+json", "application/sparql-results+xml", "text/csv",
                "text/tab-separated-values", "application/json"]
GRAPH_TYPES = ["text/turtle", "application/n-triples", "application/ld+json", "application/rdf+xml"]
SEARCH_WORDS = ["jailbreak", "backdoor", "image", "audio", "poison", "agent", "prompt", "membership", "x",
                "adversarial", "memory", "leak", "typographic", "zzz-no-match", "Ünïcödé", "a b", "%", "'\""]
WEIGHTS = {"named": 40, "sparql": 25, "ui": 15, "item": 20}


@dataclass
class Outcome:
    kind: str
    seconds: float
    error: str | None = None


@dataclass
class Plan:
    """What the clients may ask for, read from the service at the start."""

    queries: list[dict]
    threats: list[str]
    attacks: list[str]


@dataclass
class Results:
    outcomes: list[Outcome] = field(default_factory=list)
    wall: float = 0.0

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error]


# -- the requests ---------------------------------------------------------------------------------------------

def discover(base: str) -> Plan:
    s = requests.Session()
    queries = s.get(base + "/queries", timeout=60).json()["queries"]
    threats = [i["id"] for i in s.get(base + "/threats.json", timeout=60).json()["items"]]
    attacks = [i["id"] for i in s.get(base + "/attacks.json", timeout=60).json()["items"]]
    if not (queries and threats and attacks):
        raise SystemExit("the service lists no queries, threats or attacks: nothing to test")
    return Plan(queries, threats, attacks)


def param_value(rnd: random.Random, p: dict) -> str | None:
    """A random valid value for a named-query parameter; None to leave an optional one out."""
    if not p["required"] and rnd.random() < 0.3:
        return None
    t = p["type"]
    if p.get("values"):
        return rnd.choice(p["values"])
    if t == "boolean":
        return rnd.choice(["true", "false", "1", "0"])
    if t == "integer":
        return str(rnd.randint(2000, 2026))
    if t == "string":
        return rnd.choice(SEARCH_WORDS)
    if t == "iri":
        return "https://w3id.org/mfmkg/ont#Image"
    return None


def build_request(rnd: random.Random, plan: Plan) -> tuple[str, str, str, dict, str]:
    """(kind, method, path, requests kwargs, expected media type prefix)."""
    kind = rnd.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    if kind == "named":
        q = rnd.choice(plan.queries)
        params = {}
        for p in q["params"]:
            v = param_value(rnd, p)
            if v is not None:
                params[p["name"]] = v
        return kind, "GET", f"/queries/{q['name']}.json", {"params": params}, "application/json"
    if kind == "sparql":
        qkind, text = rnd.choice(SPARQL_QUERIES)
        if rnd.random() < 0.5:  # a text never seen before: evaluated in a query process, not served from a cache
            text += f"\n# load-test {rnd.getrandbits(64):x}"
        accept = rnd.choice(GRAPH_TYPES if qkind == "graph" else RESULT_TYPES)
        how = rnd.choice(["get", "form", "direct"])
        headers = {"Accept": accept}
        if how == "get":
            return kind, "GET", "/sparql", {"params": {"query": text}, "headers": headers}, accept
        if how == "form":
            return kind, "POST", "/sparql", {"data": {"query": text}, "headers": headers}, accept
        headers["Content-Type"] = "application/sparql-query"
        return kind, "POST", "/sparql", {"data": text.encode(), "headers": headers}, accept
    if kind == "ui":
        return kind, "GET", rnd.choice(["/", "/ui/threats"]), {"headers": {"Accept": "text/html"}}, "text/html"
    which, ids = rnd.choice([("threats", plan.threats), ("attacks", plan.attacks)])
    accept = rnd.choice(["application/json", "text/html"])
    path = f"/{which}/{rnd.choice(ids)}"
    if accept == "text/html":  # resources serve JSON/CSV; their HTML page lives under /ui/
        path = f"/ui{path}"
    return kind, "GET", path, {"headers": {"Accept": accept}}, accept


def check(resp: requests.Response, expected: str) -> str | None:
    if resp.status_code != 200:
        return f"HTTP {resp.status_code}: {resp.text[:300]!r}"
    ctype = resp.headers.get("Content-Type", "")
    if not ctype.startswith(expected):
        return f"Content-Type {ctype!r}, expected {expected!r}"
    if not resp.content:
        return "empty body"
    if "json" in expected:
        try:
            json.loads(resp.content)
        except ValueError as exc:
            return f"body is not JSON: {exc}"
    return None


def client(base: str, plan: Plan, n: int, seed: int, out: list[Outcome], timeout: float) -> None:
    rnd = random.Random(seed)
    with requests.Session() as s:
        for _ in range(n):
            kind, method, path, kwargs, expected = build_request(rnd, plan)
            started = time.perf_counter()
            try:
                resp = s.request(method, base + path, timeout=timeout, **kwargs)
                error = check(resp, expected)
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"
            elapsed = time.perf_counter() - started
            out.append(Outcome(kind, elapsed, f"{method} {path} {kwargs.get('params', '')}: {error}"
                               if error else None))


def run_load(base: str, clients: int, requests_per_client: int, seed: int = 1, timeout: float = 60.0) -> Results:
    """Run the clients against ``base`` and collect every outcome."""
    _loopback_only(base)
    plan = discover(base)
    per_client: list[list[Outcome]] = [[] for _ in range(clients)]
    threads = [threading.Thread(target=client, args=(base, plan, requests_per_client, seed * 1000 + i,
                                                     per_client[i], timeout), daemon=True)
               for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    res = Results([o for part in per_client for o in part], time.perf_counter() - started)
    missing = clients * requests_per_client - len(res.outcomes)
    if missing:  # a client thread died: count what it did not send as errors
        res.outcomes += [Outcome("lost", 0.0, "client thread ended early")] * missing
    return res


# -- the server -----------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``mfmkg serve --sample`` in its own process, on an in-memory store or an on-disk one in a temporary
    directory; its log goes to a file (a pipe nobody reads would fill up and block the server under load)."""

    def __init__(self, threads: int = 8, store: str = "memory", extra_env: dict | None = None,
                 start_timeout: float = 120.0):
        self.tmp = tempfile.TemporaryDirectory(prefix="mfmkg-load-")
        data_dir = Path(self.tmp.name) / "data"
        self.log_path = Path(self.tmp.name) / "serve.log"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "MFMKG_DATA_DIR": str(data_dir), **(extra_env or {})}
        where = ["--memory"] if store == "memory" else ["--data-dir", str(data_dir)]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mfmkg", "serve", *where, "--sample", "--host", "127.0.0.1",
             "--port", str(port), "--threads", str(threads)],
            env=env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + start_timeout
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"mfmkg serve exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if requests.get(self.url + "/-/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"mfmkg serve did not answer within {start_timeout:g} s:\n{self.log_text()}")
            time.sleep(0.2)

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[int]:
        """Processes whose parent is the server (query processes still running, or zombies)."""
        return children_of(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.tmp.cleanup()


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def server_problems(server: Server) -> list[str]:
    """After the load: the server must be alive, answer, have no query process left and have logged no
    unhandled error."""
    problems = []
    if server.proc.poll() is not None:
        return [f"the server exited with {server.proc.returncode}"]
    try:
        r = requests.get(server.url + "/sparql", params={"query": "ASK {}"}, timeout=30)
        if r.status_code != 200:
            problems.append(f"the server answers {r.status_code} after the load")
    except requests.RequestException as exc:
        problems.append(f"the server does not answer after the load: {exc}")
    from mfmkg.query_pool import IDLE_SECONDS

    deadline = time.monotonic() + IDLE_SECONDS + 10  # idle reusable query processes end after IDLE_SECONDS
    while server.children() and time.monotonic() < deadline:
        time.sleep(0.1)
    if server.children():
        problems.append(f"query processes left behind: {server.children()}")
    for line in server.log_text().splitlines():
        if "Traceback" in line or " ERROR " in line or " CRITICAL " in line:
            problems.append(f"server log: {line}")
    return problems


# -- report ---------------------------------------------------------------------------------------------------

def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(-(-q * len(sorted_values) // 100)))  # ceil(q/100 * n)
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary(res: Results) -> dict:
    def stats(values):
        v = sorted(values)
        return {"n": len(v), "p50_ms": percentile(v, 50) * 1000, "p95_ms": percentile(v, 95) * 1000,
                "p99_ms": percentile(v, 99) * 1000, "max_ms": (v[-1] if v else float("nan")) * 1000}

    kinds = sorted({o.kind for o in res.outcomes})
    return {"all": stats([o.seconds for o in res.outcomes]),
            "kinds": {k: stats([o.seconds for o in res.outcomes if o.kind == k]) for k in kinds},
            "errors": len(res.errors), "requests": len(res.outcomes), "seconds": res.wall,
            "rps": len(res.outcomes) / res.wall if res.wall else 0.0}


def print_report(res: Results, clients: int, per_client: int, extra_problems: list[str]) -> None:
    s = summary(res)
    print(f"load test: {clients} clients x {per_client} requests = {s['requests']} requests in "
          f"{s['seconds']:.1f} s ({s['rps']:.0f} req/s; {os.cpu_count()} CPUs, Python {sys.version.split()[0]})")
    print(f"{'kind':>8} {'n':>7} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for name, row in [("all", s["all"]), *s["kinds"].items()]:
        print(f"{name:>8} {row['n']:>7} {row['p50_ms']:>9.1f} {row['p95_ms']:>9.1f} {row['p99_ms']:>9.1f} "
              f"{row['max_ms']:>9.1f}")
    print(f"errors: {s['errors']}")
    for o in res.errors[:20]:
        print(f"  [{o.kind}] {o.error}")
    if len(res.errors) > 20:
        print(f"  ... and {len(res.errors) - 20} more")
    for p in extra_problems:
        print(f"server problem: {p}")


def _loopback_only(base: str) -> None:
    host = urlsplit(base).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to load-test {base}: loopback addresses only")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=1000, help="requests per client")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=8, help="server worker threads")
    ap.add_argument("--store", choices=["memory", "disk"], default="memory",
                    help="the started server's store: --memory, or a fresh on-disk data directory")
    ap.add_argument("--timeout", type=float, default=60.0, help="client timeout per request (s)")
    ap.add_argument("--url", help="a running service on loopback (default: start one)")
    ap.add_argument("--json", dest="json_out", help="also write the summary as JSON to this file")
    args = ap.parse_args(argv)
    server = None
    if args.url:
        base = args.url.rstrip("/")
        _loopback_only(base)
    else:
        server = Server(threads=args.threads, store=args.store)
        base = server.url
    try:
        res = run_load(base, args.clients, args.requests, seed=args.seed, timeout=args.timeout)
        problems = server_problems(server) if server else []
    finally:
        if server:
            server.stop()
    print_report(res, args.clients, args.requests, problems)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({**summary(res), "server_problems": problems}, indent=2))
    return 1 if res.errors or problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
