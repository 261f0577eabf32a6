#!/usr/bin/env bash
# The dispute of docs/disputes.md, on the demo store (run scripts/demo.sh first): the
# Communauté de communes de Brocéliande's renewal of 1 July 2027 is invoiced in full, though
# its termination letter was received on 10 June; the letter is entered afterwards, the
# member contests the titre, and the ledger shows why, corrects, and hands over a dossier.
set -euo pipefail
cd "$(dirname "$0")/.."
ledger=ledger
[ -x .venv/bin/ledger ] && ledger=.venv/bin/ledger
store=demo.sqlite3
[ -f "$store" ] && [ -f demo.key ] || { echo "run scripts/demo.sh first"; exit 1; }
rm -rf demo-dossier demo-dossier.zip demo-titres-2027-07.xml demo-reductions-2027-07.xml

echo "== July: the renewal is invoiced and sent to the comptable"
"$ledger" --store "$store" bill --through 2027-07-31 --issue-date 2027-07-05 --by demo
"$ledger" --store "$store" invoices export --format pes --out demo-titres-2027-07.xml \
  --file-date 2027-07-06 --by demo
invoice=$("$ledger" --store "$store" invoices list --json | python3 -c \
  'import json,sys; print([d["number"] for d in json.load(sys.stdin) if d["customer"]=="cc-broceliande"][-1])')
echo
echo "== The letter received on 10 June is entered on 12 July"
"$ledger" --store "$store" import docs/examples/dispute/late-letter.jsonl --by "Mme Riou"
echo
echo "== The member contests $invoice: what it was based on"
"$ledger" --store "$store" explain "$invoice" --line 1
echo "== What the ledger knows now that it did not know then"
position=$("$ledger" --store "$store" history cc-broceliande --json | python3 -c \
  'import json,sys; print([m["position"] for m in json.load(sys.stdin) if m["event"]=="subscription.termination_requested"][0])')
"$ledger" --store "$store" diff --known-at-position $((position - 1)) --known-at-position "$position" \
  --customer cc-broceliande
echo
echo "== The correction, and the réduction for the comptable"
"$ledger" --store "$store" corrections
"$ledger" --store "$store" corrections apply "$invoice" --by "Mme Riou" --issue-date 2027-07-15
"$ledger" --store "$store" invoices export --format pes --out demo-reductions-2027-07.xml \
  --file-date 2027-07-16 --by "Mme Riou"
replacement=$("$ledger" --store "$store" invoices list --json | python3 -c \
  'import json,sys; print([d["number"] for d in json.load(sys.stdin) if d["customer"]=="cc-broceliande" and d["kind"]=="invoice"][-1])')
"$ledger" --store "$store" explain "$replacement" --line 1
echo "== The dossier, checked without the ledger"
"$ledger" --store "$store" dossier cc-broceliande --key demo.key --out demo-dossier.zip --by demo
mkdir demo-dossier && (cd demo-dossier && python3 -c 'import zipfile; zipfile.ZipFile("../demo-dossier.zip").extractall()')
python3 -I demo-dossier/verify.py --key "$("$ledger" --store "$store" audit key)"
