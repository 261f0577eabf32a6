#!/usr/bin/env bash
# Demo of the main job on the embedded SQLite store: import the example order forms and
# letters of docs/examples/, then print the charges due and each subscription's state.
# It uses its own store, demo.sqlite3, recreated on every run.
set -euo pipefail
cd "$(dirname "$0")/.."
ledger=ledger
[ -x .venv/bin/ledger ] && ledger=.venv/bin/ledger
store=demo.sqlite3
rm -f "$store" "$store-wal" "$store-shm" demo-F-2027-000001.pdf demo.key demo-checkpoint.txt \
  demo-F-2027-000002.tlog-proof demo-titres-2027.xml demo-forecast.png

# Prices come from the barème adopted by deliberation, recorded as an event.
"$ledger" --store "$store" tariff adopt catalogues/megalis-suite-territoriale-2026.toml
for file in docs/examples/*.jsonl; do
  "$ledger" --store "$store" import "$file"
done
echo
"$ledger" --store "$store" charges --as-of 2028-12-31
for query in lanvenec.fr@2027-07-01 lanvenec.fr@2027-09-01 cc-broceliande.bzh@2027-07-01 \
             ccas-treveneuc.fr@2028-02-01 ploerdut.fr@2028-06-01; do
  echo
  "$ledger" --store "$store" subscription "${query%@*}" --as-of "${query#*@}"
done
echo
"$ledger" --store "$store" bill --through 2027-04-30 --issue-date 2027-05-03 --by demo
"$ledger" --store "$store" invoice export F-2027-000001 --format facturx --out demo-F-2027-000001.pdf
# For the budget: what each year will bring in, by barème line, drawn.
"$ledger" --store "$store" forecast --from 2026-01 --to 2028-12 --by year --by-line \
  --plot demo-forecast.png
# The titres de recette for the comptable public (Hélios): one PES V2 file, numbers recorded.
"$ledger" --store "$store" invoices export --format pes --out demo-titres-2027.xml \
  --file-date 2027-05-04 --by demo
echo

# Provable history: a signing key (kept outside the store in real life), a signed checkpoint,
# a full verification against it, and a proof of one invoice checked with the public key alone.
"$ledger" --store "$store" audit keygen --out demo.key --by demo
"$ledger" --store "$store" audit checkpoint --key demo.key --out demo-checkpoint.txt --by demo
"$ledger" --store "$store" audit verify --checkpoint demo-checkpoint.txt \
  --key "$("$ledger" --store "$store" audit key)"
"$ledger" --store "$store" audit prove F-2027-000002 --out demo-F-2027-000002.tlog-proof
"$ledger" audit check-proof demo-F-2027-000002.tlog-proof --key "$("$ledger" --store "$store" audit key)"
echo
echo "Explore further, for example:"
echo "  $ledger --store $store charges --as-of 2027-04-01 --customer lanvenec --json"
echo "  $ledger --store $store subscription lanvenec.fr --as-of 2027-09-01"
echo "  $ledger --store $store invoice show F-2027-000002"
echo "  $ledger --store $store history lanvenec"
