"""The tables of docs/performance.md, from results files: every figure there is printed by

    python -m benchmarks.report benchmarks/results/A.json [B.json …]

Files of the same store are merged by size (a quick run and a 1 M run, say); one table per
store. Each goal says met or missed from the figures themselves.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

SIZES = (10_000, 100_000, 1_000_000)
MB = 1024


def _load(paths: list[str]) -> dict[str, dict[int, dict]]:
    stores: dict[str, dict[int, dict]] = {}
    for path in paths:
        results = orjson.loads(Path(path).read_bytes())
        for size in results["sizes"]:
            size["_file"] = Path(path).name
            size["_machine"] = results["machine"]
            stores.setdefault(size["store"], {})[size["target_events"]] = size
    return stores


def _spread(value: dict | None, digits: int = 2) -> str:
    if not value:
        return "—"
    return f"{value['min']:.{digits}f} / **{value['median']:.{digits}f}** / {value['max']:.{digits}f}"


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else "**met**" if ok else "**missed**"


def _cell(sizes: dict[int, dict], size: int, get) -> str:
    if size not in sizes:
        return "—"
    try:
        return get(sizes[size])
    except (KeyError, TypeError):
        return "—"


def _mb(kib: int) -> str:
    return f"{kib / MB:.0f} MB"


def table(store: str, sizes: dict[int, dict]) -> str:
    present = [s for s in SIZES if s in sizes]
    header = "| | " + " | ".join(f"{s:,} events".replace(",", " ") for s in present) + \
        " | goal | verdict |"
    lines = [header, "|---" * (len(present) + 3) + "|"]

    def row(label: str, get, goal: str = "", verdict: str = "") -> None:
        lines.append(f"| {label} | " + " | ".join(_cell(sizes, s, get) for s in present) +
                     f" | {goal} | {verdict} |")

    row("events stored / subscriptions", lambda r: f"{r['events']:,} / {r['subscriptions']:,}"
        .replace(",", " "))
    row("pairs (measure, baseline)", lambda r: str(r["pairs"]))
    # Import
    row("import, s (min / median / max)", lambda r: _spread(r["import"]["seconds"], 1))
    row("raw append of the same events, s", lambda r: _spread(r["import"]["baseline_seconds"], 1))
    ok = [sizes[s]["import"]["ratio"]["median"] >= 0.5 for s in present]
    row("**import ratio** (raw ÷ import)", lambda r: _spread(r["import"]["ratio"]),
        "≥ 0.5 (issue 9)", _verdict(all(ok)))
    # Replay
    row("replay of every charge, s", lambda r: _spread(r["replay"]["seconds"]))
    row("read + decode of the same entries, s", lambda r: _spread(r["replay"]["baseline_seconds"]))
    ok = [sizes[s]["replay"]["ratio"]["median"] >= 0.5 for s in present]
    row("**replay ratio** (raw ÷ replay)", lambda r: _spread(r["replay"]["ratio"]),
        "≥ 0.5 (issues 9, 16)", _verdict(all(ok)))
    # Charges
    row("`charges --json` (all), s", lambda r: _spread(r["charges"]["seconds"]))
    row("its floor: ordered SELECT + `orjson.loads`, s",
        lambda r: _spread(r["charges"]["baseline_seconds"]))
    ok = [sizes[s]["charges"]["times_baseline"]["median"] <= 3 for s in present
          if "charges" in sizes[s]]
    row("**`charges` ÷ floor**", lambda r: _spread(r["charges"]["times_baseline"]),
        "≤ 3 (issue 16)", _verdict(all(ok) if ok else None))
    # Memory
    for name, label in (("charges", "`charges --json`"), ("billing", "`bill`"),
                        ("forecast", "`forecast`"), ("verify", "`audit verify`")):
        big, mid = sizes.get(1_000_000, {}).get(name), sizes.get(100_000, {}).get(name)
        verdict = None
        if big and mid:
            verdict = big["peak_rss_kib"] <= 1.5 * mid["peak_rss_kib"] and \
                big["peak_rss_kib"] <= 250 * MB
        row(f"peak memory of {label}", lambda r, n=name: _mb(r[n]["peak_rss_kib"]),
            "1 M ≤ 1.5 × 100 k and ≤ 250 MB (issue 16)", _verdict(verdict))
    # Billing
    budget = 30 if store == "sqlite" else 45
    big = sizes.get(1_000_000, {}).get("billing")
    row("billing run over every subscription",
        lambda r: f"{r['billing']['seconds']:.1f} s, "
        f"{r['billing']['invoices']:,} invoices".replace(",", " ").replace("s  ", "s, "),
        f"1 M ≤ {budget} s (issue 16)", _verdict(big["seconds"] <= budget if big else None))
    # Verify and prove
    row("`audit verify`, s", lambda r: _spread(r["verify"]["seconds"]))
    row("read + decode of the whole log, s", lambda r: _spread(r["verify"]["baseline_seconds"]))
    ok = [sizes[s]["verify"]["ratio"]["median"] >= 0.5 for s in present if "verify" in sizes[s]]
    row("**verify ratio** (raw ÷ verify)", lambda r: _spread(r["verify"]["ratio"]),
        "≥ 0.5 (issue 9)", _verdict(all(ok) if ok else None))
    big = sizes.get(1_000_000, {}).get("prove")
    row("`audit prove` of a document, p50 / max", lambda r:
        f"{r['prove']['p50_s'] * 1000:.1f} / {r['prove']['max_s'] * 1000:.1f} ms",
        "1 M ≤ 0.5 s (issue 9)", _verdict(big["max_s"] <= 0.5 if big else None))
    # One-customer reads
    reads = (("subscription", "`subscription DOMAIN`"), ("charges_domain", "`charges --domain`"),
             ("charges_customer", "`charges --customer`"), ("explain", "`explain NUMBER`"),
             ("invoice_show", "`invoice show NUMBER`"),
             ("corrections_customer", "`corrections --customer`"))
    for key, label in reads:
        verdict = None
        if 1_000_000 in sizes and 10_000 in sizes:
            ratio = sizes[1_000_000]["latency"][key]["p50_ms"] / \
                sizes[10_000]["latency"][key]["p50_ms"]
            verdict = ratio <= 1.5
            goal = f"1 M ÷ 10 k ≤ 1.5 at p50: {ratio:.2f}"
        else:
            first, last = present[0], present[-1]
            ratio = sizes[last]["latency"][key]["p50_ms"] / sizes[first]["latency"][key]["p50_ms"]
            goal = f"1 M ÷ 10 k ≤ 1.5 at p50 (here {last // 1000} k ÷ {first // 1000} k: " \
                f"{ratio:.2f})"
        row(f"{label} p50 / p99", lambda r, k=key:
            f"{r['latency'][k]['p50_ms']:.2f} / {r['latency'][k]['p99_ms']:.2f} ms",
            goal, _verdict(verdict))
    # Start-up
    ok = [sizes[s]["startup"]["help_times_python"]["median"] <= 2.5 for s in present]
    row("`ledger --help` ÷ `python -c pass`",
        lambda r: _spread(r["startup"]["help_times_python"], 1), "≤ 2.5 (issue 16)",
        _verdict(all(ok)))
    ok = [sizes[s]["startup"]["subscription_json_times_python"]["median"] <= 2.5
          for s in present]
    row("`ledger subscription D --json` ÷ `python -c pass`",
        lambda r: _spread(r["startup"]["subscription_json_times_python"], 1),
        "≤ 2.5 (issue 16)", _verdict(all(ok)))
    files = sorted({sizes[s]["_file"] for s in present})
    return "\n".join(lines) + "\n\nFrom " + ", ".join(f"`benchmarks/results/{f}`"
                                                     for f in files) + ".\n"


def main(paths: list[str]) -> None:
    for store, sizes in _load(paths).items():
        machine = next(iter(sizes.values()))["_machine"]
        facts = ", ".join(f"{k} {v}" for k, v in machine.items())
        print(f"### {'SQLite' if store == 'sqlite' else 'PostgreSQL'}\n\nMachine: {facts}.\n")
        print(table(store, sizes))


if __name__ == "__main__":
    main(sys.argv[1:])
