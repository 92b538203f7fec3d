#!/usr/bin/env bash
# The fresh-clone install step, timed: `make .venv/.installed` in a new clone of each commit
# given, the commits taken in turn, REPEATS times. "cold": caches empty (a fresh machine:
# every package downloaded, pip's and uv's caches off or new); "warm": a cache kept from the
# run before (a developer's second clone). Prints one line per run: commit, cache, seconds.
#
#   bash bench/bench_install.sh BEFORE_COMMIT AFTER_COMMIT     (REPEATS=3 CACHES="cold warm")
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
repeats="${REPEATS:-3}"
work="$(mktemp -d /tmp/threadgate-install-XXXXXX)"
trap 'rm -rf "$work"' EXIT
for cache in ${CACHES:-cold warm}; do
    for i in $(seq "$repeats"); do
        for commit in "$@"; do
            clone="$work/clone"
            rm -rf "$clone"
            git clone --quiet --no-checkout "$repo" "$clone"
            git -C "$clone" checkout --quiet "$commit"
            if [ "$cache" = cold ]; then
                env=(PIP_NO_CACHE_DIR=1 UV_CACHE_DIR="$work/uv-cache-cold-$i-$commit")
            else
                env=(PIP_CACHE_DIR="$work/pip-cache-$commit" UV_CACHE_DIR="$work/uv-cache-$commit")
                if [ "$i" = 1 ]; then  # fill the cache first
                    (cd "$clone" && env "${env[@]}" make --quiet .venv/.installed >/dev/null 2>&1)
                    rm -rf "$clone/.venv" "$clone/.uv"
                fi
            fi
            start=$(date +%s.%N)
            (cd "$clone" && env "${env[@]}" make --quiet .venv/.installed >/dev/null 2>&1)
            end=$(date +%s.%N)
            printf '%s %s %.1f\n' "$(git -C "$clone" rev-parse --short HEAD)" "$cache" \
                "$(echo "$end - $start" | bc)"
            rm -rf "$work"/uv-cache-cold-*
        done
    done
done
