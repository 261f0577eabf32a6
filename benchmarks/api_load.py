"""Load on `ledger serve`, loopback only, a fixed number of requests: reads per second of
GET /subscriptions/{domain} and commands per second of POST /commands, with 8 concurrent
clients, p50/p99 — and no command lost or duplicated when every fifth request is sent again
with the same Idempotency-Key (a client retrying after a timeout).

    python -m benchmarks.api_load [--reads 2000] [--writes 800] [--clients 8] \\
        [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _ledger(store: str, env: dict[str, str], *argv: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cli.main", "--store", store, *argv],
                          cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
                          check=True)
    return done.stdout


def _siret(n: int) -> str:
    from stdnum import luhn

    siren = f"2{n % 10**7:07d}"
    siren += luhn.calc_check_digit(siren)
    body = siren + "0001"
    return body + luhn.calc_check_digit(body)


def prepare(store: str, env: dict[str, str], domains: int) -> None:
    _ledger(store, env, "tariff", "adopt", str(ROOT / "catalogues" /
                                               "megalis-suite-territoriale-2026.toml"))
    lines = []
    for n in range(domains):
        key = f"load{n}"
        lines.append({"id": f"r{n}", "type": "register_customer", "customer": key,
                      "name": f"Commune {n}", "siret": _siret(n), "category": "commune",
                      "population": 800})
        lines.append({"id": f"s{n}", "type": "sign_order", "order": f"BC-L{n}",
                      "customer": key, "domain": f"{key}.fr", "storage_gb": 25,
                      "extra_gb_packs": [10], "signed_on": "2026-03-01",
                      "received_on": "2026-03-05"})
        lines.append({"id": f"a{n}", "type": "activate", "domain": f"{key}.fr",
                      "activated_on": "2026-04-01"})
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as handle:
        handle.write("\n".join(json.dumps(line) for line in lines) + "\n")
    _ledger(store, env, "import", handle.name, "--quiet")


class Server:
    def __init__(self, store: str, env: dict[str, str]) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "--store", store, "serve", "--port",
             str(self.port)], cwd=ROOT, env={**os.environ, **env}, stdout=self.log,
            stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                if httpx.get(f"{self.url}/openapi.json", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("ledger serve did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run_clients(count: int, work) -> tuple[float, list[float]]:
    timings: list[float] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        local = work(index)
        with lock:
            timings.extend(local)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, timings


def measure(store: str, env: dict[str, str], reads: int, writes: int, clients: int,
            domains: int) -> dict:
    prepare(store, env, domains)
    secret = _ledger(store, env, "token", "create", "--role", "clerk", "--name",
                     "load").strip().splitlines()[-1]
    server = Server(store, env)
    headers = {"Authorization": f"Bearer {secret}"}
    try:
        def reader(index: int) -> list[float]:
            out = []
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
                for n in range(index, reads, clients):
                    started = time.perf_counter()
                    response = http.get(f"/subscriptions/load{n % domains}.fr",
                                        params={"as_of": "2027-06-01"})
                    out.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text
            return out

        read_seconds, read_times = run_clients(clients, reader)
        replays = {"count": 0}

        def writer(index: int) -> list[float]:
            out = []
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
                for n in range(index, writes, clients):
                    body = {"id": f"w{n}", "type": "register_customer",
                            "customer": f"new{n}", "name": f"Commune nouvelle {n}",
                            "siret": _siret(5_000_000 + n), "category": "commune",
                            "population": 500}
                    key = f"load-{n}"
                    started = time.perf_counter()
                    response = http.post("/commands", json=body,
                                         headers={"Idempotency-Key": key})
                    out.append(time.perf_counter() - started)
                    assert response.status_code == 201, response.text
                    if n % 5 == 0:  # the client retries, with the same key and body
                        again = http.post("/commands", json=body,
                                          headers={"Idempotency-Key": key})
                        assert again.json() == response.json()
                        assert again.headers.get("Idempotent-Replayed") == "true"
                        replays["count"] += 1
            return out

        write_seconds, write_times = run_clients(clients, writer)
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as http:
            customers = [c["customer"] for c in http.get("/customers").json()]
        registered = [c for c in customers if c.startswith("new")]
        lost = writes - len(set(registered))
        duplicated = len(registered) - len(set(registered))
    finally:
        server.stop()
    return {
        "reads": {"requests": reads, "seconds": round(read_seconds, 2),
                  "per_second": round(reads / read_seconds, 1),
                  "p50_ms": round(percentile(read_times, 0.5) * 1000, 2),
                  "p99_ms": round(percentile(read_times, 0.99) * 1000, 2)},
        "writes": {"requests": writes, "retries": replays["count"],
                   "seconds": round(write_seconds, 2),
                   "per_second": round(writes / write_seconds, 1),
                   "p50_ms": round(percentile(write_times, 0.5) * 1000, 2),
                   "p99_ms": round(percentile(write_times, 0.99) * 1000, 2),
                   "lost": lost, "duplicated": duplicated},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--writes", type=int, default=800)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--postgres", help="also on this PostgreSQL server (admin URL)")
    args = parser.parse_args(argv)
    results = {"date": date.today().isoformat(),
               "machine": {"python": platform.python_version(), "cores": os.cpu_count(),
                           "sqlite": sqlite3.sqlite_version, "platform": platform.platform()},
               "command": "python -m benchmarks.api_load " + " ".join(argv or sys.argv[1:]),
               "clients": args.clients, "stores": {}}
    with tempfile.TemporaryDirectory() as folder:
        store = str(Path(folder) / "load.sqlite3")
        results["stores"]["sqlite"] = measure(store, {}, args.reads, args.writes,
                                              args.clients, args.domains)
        print(json.dumps(results["stores"]["sqlite"]), flush=True)
    if args.postgres:
        from eventstore import postgres_schema as pgstore
        from eventstore.config import store_config

        operator = f"load{uuid.uuid4().hex[:8]}"
        config = store_config(args.postgres, operator)
        pgstore.init_operator(config)
        role = pgstore.writer_role(config.schema)
        url = args.postgres.replace("postgres@", f"{role}@", 1)
        try:
            results["stores"]["postgres"] = measure(url, {"LEDGER_OPERATOR": operator},
                                                    args.reads, args.writes, args.clients,
                                                    args.domains)
            print(json.dumps(results["stores"]["postgres"]), flush=True)
        finally:
            import psycopg
            from psycopg.sql import SQL, Identifier

            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(SQL("DROP SCHEMA IF EXISTS {0} CASCADE").format(
                    Identifier(config.schema)))
                conn.execute(SQL("DROP ROLE IF EXISTS {0}").format(
                    Identifier(f"{config.schema}_writer")))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{results['date']}-api-load.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
