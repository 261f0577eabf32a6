#!/bin/sh
# The temporary folders of the ledger and their size, every 3 s (run it beside a benchmark:
#   sh benchmarks/temp_space.sh > du.log &  ... ; kill %1; sort -k3 -n du.log | tail -1).
while true; do
  for d in /tmp/ledger-*; do
    [ -d "$d" ] && echo "$(date +%H:%M:%S) $(du -sk "$d" 2>/dev/null)"
  done
  sleep 3
done
