"""Is the PostgreSQL one-customer latency at 100 k a property of the store or of the moment?

    python -m benchmarks.pg_statistics [ADMIN_URL]

Imports 100 k events into a fresh operator schema, bills, then times the one-customer reads of
``benchmarks.tasks.latency`` (p50, ms): right after billing, after ``VACUUM ANALYZE``, and
again. Written to explain the 10 k → 100 k growth of the first PostgreSQL run of 2026-11-26
(docs/performance.md); with the ledger's own ANALYZE after large writes the first two agree.
"""
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.generate import write
from benchmarks.run import CHUNK, Stores, task

ADMIN = sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/test"
folder = Path(tempfile.mkdtemp())
stores = Stores(folder, ADMIN)
store = stores.fresh()
try:
    files = []
    subs = 13569
    for first in range(0, subs, CHUNK):
        p = folder / f"c-{first}.jsonl"; write(p, min(CHUNK, subs - first), seed=first, prefix=f"b{first // CHUNK}"); files.append(str(p))
    print(task("import", store, *files)["seconds"], flush=True)
    print(task("bill", store)["seconds"], flush=True)
    rng = random.Random(7)
    sample = [f"b{(i := rng.randrange(subs)) // CHUNK}-{i % CHUNK:06d}" for _ in range(200)]
    (folder / "s.json").write_text(json.dumps(sample))
    r1 = task("latency", store, str(folder / "s.json"))
    print("right after billing", {k: v["p50_ms"] for k, v in r1.items() if isinstance(v, dict)}, flush=True)
    import psycopg
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'VACUUM ANALYZE "ledger_{store[1]}".ledger_log')
        conn.execute(f'VACUUM ANALYZE "ledger_{store[1]}".ledger_refs')
    time.sleep(5)
    r2 = task("latency", store, str(folder / "s.json"))
    print("after VACUUM ANALYZE", {k: v["p50_ms"] for k, v in r2.items() if isinstance(v, dict)}, flush=True)
    r3 = task("latency", store, str(folder / "s.json"))
    print("again", {k: v["p50_ms"] for k, v in r3.items() if isinstance(v, dict)}, flush=True)
finally:
    stores.drop_all()
