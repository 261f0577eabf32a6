"""Generate a realistic synthetic command file: N subscriptions of small public bodies.

Populations follow the shape of French communes (most below 1 000 inhabitants, a long
tail); categories are mostly communes, with CCAS, EPCI and CIAS. Orders, activations,
storage additions and terminations are spread over 2026–2028. Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import random
from datetime import date, timedelta
from pathlib import Path

import orjson
from stdnum import luhn

START, END = date(2026, 1, 5), date(2028, 11, 30)


def siret(n: int) -> str:
    siren = f"2{n % 10**7:07d}"
    siren += luhn.calc_check_digit(siren)
    body = siren + "0001"
    return body + luhn.calc_check_digit(body)


def population(rng: random.Random, ceiling: int) -> int:
    # Log-normal around ~500 inhabitants: the median French commune has about 450.
    return max(20, min(ceiling, int(rng.lognormvariate(6.2, 1.0))))


def day_between(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randint(0, max(0, (last - first).days)))


def commands(n: int, seed: int = 2026, prefix: str = "body"):
    rng = random.Random(seed)
    for i in range(n):
        category = rng.choices(["commune", "ccas", "epci", "cias"], weights=[70, 15, 12, 3])[0]
        ceiling = 3_500 if category in ("commune", "ccas") else 15_000
        key, domain = f"{prefix}-{i:06d}", f"{prefix}-{i:06d}.fr"
        yield {"id": f"{key}-r", "type": "register_customer", "customer": key,
               "name": f"Collectivité {i}", "siret": siret(seed * 100_003 + i), "category": category,
               "population": population(rng, ceiling),
               "address": {"line1": f"{1 + i % 90} place de la Mairie",
                           "postcode": f"{29000 + i % 900:05d}", "city": f"Commune {i}"}}
        received = day_between(rng, START, END)
        signed = received - timedelta(days=rng.randint(0, 15))
        packs = rng.choices([[], [10], [20], [50], [10, 10]], weights=[50, 25, 12, 8, 5])[0]
        yield {"id": f"{key}-o", "type": "sign_order", "order": f"BC-{key}", "customer": key,
               "domain": domain, "storage_gb": rng.choice([25, 25, 25, 50, 50, 100, 150, 200]),
               "extra_gb_packs": packs, "signed_on": str(signed), "received_on": str(received)}
        if rng.random() < 0.2:
            added = day_between(rng, received, END)
            yield {"id": f"{key}-s", "type": "add_storage", "order": f"BC-{key}-2",
                   "domain": domain, "extra_gb_packs": [rng.choice([10, 20, 50])],
                   "signed_on": str(added), "received_on": str(added)}
        if rng.random() < 0.9:
            activated = day_between(rng, received, min(END, received + timedelta(days=60)))
            yield {"id": f"{key}-a", "type": "activate", "domain": domain,
                   "activated_on": str(activated)}
            if rng.random() < 0.1:
                yield {"id": f"{key}-t", "type": "request_termination", "domain": domain,
                       "received_on": str(day_between(rng, activated, END))}


def write(path: Path, n: int, seed: int = 2026, prefix: str = "body") -> int:
    lines = 0
    with path.open("wb") as out:
        for command in commands(n, seed, prefix):
            out.write(orjson.dumps(command) + b"\n")
            lines += 1
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("subscriptions", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    print(f"{write(args.out, args.subscriptions, args.seed)} commands written to {args.out}")
