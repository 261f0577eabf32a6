"""A very large file of commands: memory of the import, and how soon a bad line is reported.

    python -m benchmarks.large_import [--subscriptions 410000] [--postgres URL]

Generates one file of about 1.3 million lines (about 200 MB), then, each in a fresh process:
- parses it once with orjson, line by line (the floor);
- imports it into a fresh store, recording the time and the peak resident memory (VmHWM);
- imports a copy with one malformed line near the end, recording how long until the refusal.
Goals (issue 10): peak memory ≤ 1.5 GB, and the bad line reported within 1.5× the parse.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import orjson

from benchmarks.generate import commands
from benchmarks.run import RESULTS, ROOT, Stores, machine

PARSE = """
import sys, time, orjson
started = time.perf_counter()
count = 0
with open(sys.argv[1], "rb") as handle:
    for line in handle:
        orjson.loads(line)
        count += 1
print(orjson.dumps({"seconds": time.perf_counter() - started, "lines": count}).decode())
"""

IMPORT = """
import sys, time, orjson
from eventstore.app import open_store
from commands.importer import import_file, ImportRejected
app = open_store(sys.argv[1], sys.argv[2] or None)
started = time.perf_counter()
outcome = {}
try:
    report = import_file(app, sys.argv[3])
    outcome = {"applied": report.applied, "events": report.events}
except ImportRejected as error:
    outcome = {"rejected": str(error).splitlines()[0]}
outcome["seconds"] = time.perf_counter() - started
status = open("/proc/self/status").read().splitlines()
outcome["peak_kib"] = int(next(l.split()[1] for l in status if l.startswith("VmHWM:")))
print(orjson.dumps(outcome).decode())
"""


def run(code: str, *arguments: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *arguments], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return orjson.loads(done.stdout.strip().splitlines()[-1])


def generate(path: Path, subscriptions: int) -> int:
    lines = 0
    with path.open("wb") as out:
        for first in range(0, subscriptions, 10_000):
            for command in commands(min(10_000, subscriptions - first), seed=first,
                                    prefix=f"l{first // 10_000}"):
                out.write(orjson.dumps(command) + b"\n")
                lines += 1
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=410_000)
    parser.add_argument("--postgres", metavar="URL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        good = folder / "large.jsonl"
        lines = generate(good, args.subscriptions)
        megabytes = round(good.stat().st_size / 1e6, 1)
        bad = folder / "large-bad.jsonl"
        target = lines - 1000
        with good.open("rb") as source, bad.open("wb") as out:
            for number, line in enumerate(source, start=1):
                out.write(b'{"id": "broken", "type": \n' if number == target else line)
        print(f"{lines:,} lines, {good.stat().st_size / 1e6:.0f} MB", file=sys.stderr)
        parse = run(PARSE, str(good))
        print(f"parse {parse['seconds']:.1f} s", file=sys.stderr)
        stores = Stores(folder, args.postgres)
        try:
            store = stores.fresh()
            rejected = run(IMPORT, store[0], store[1] or "", str(bad))
            print(f"bad line reported after {rejected['seconds']:.1f} s", file=sys.stderr)
            imported = run(IMPORT, store[0], store[1] or "", str(good))
            print(f"import {imported['seconds']:.0f} s, peak {imported['peak_kib'] / 1024:.0f} MB",
                  file=sys.stderr)
        finally:
            stores.drop_all()
    result = {
        "date": date.today().isoformat(), "machine": machine(args.postgres),
        "command": " ".join(["python -m benchmarks.large_import", *sys.argv[1:]]),
        "store": "postgresql" if args.postgres else "sqlite",
        "lines": lines, "megabytes": megabytes,
        "parse_seconds": round(parse["seconds"], 2),
        "bad_line": {"line": target, "seconds": round(rejected["seconds"], 2),
                     "ratio_to_parse": round(rejected["seconds"] / parse["seconds"], 2),
                     "message": rejected.get("rejected")},
        "import": {"seconds": round(imported["seconds"], 1), "events": imported.get("events"),
                   "commands": imported.get("applied"),
                   "peak_rss_mb": round(imported["peak_kib"] / 1024, 1)},
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{result['date']}-large-import-{result['store']}.json"
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    print(f"written to {out}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
