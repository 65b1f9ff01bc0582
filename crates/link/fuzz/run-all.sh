#!/bin/sh
# Runs every fuzz target for a bounded time (default 30 s each). Needs cargo-fuzz
# (`cargo install cargo-fuzz`) and nightly features, which RUSTC_BOOTSTRAP=1 enables on stable;
# `-s none` because the sanitizer runtimes ship with nightly only.
# Usage: crates/link/fuzz/run-all.sh [seconds per target]
set -eu
seconds="${1:-30}"
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none
for target in $(cargo fuzz list); do
    echo "== $target ($seconds s)"
    cargo fuzz run -s none "$target" -- -max_total_time="$seconds" -max_len=4096
done
