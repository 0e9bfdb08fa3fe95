#!/usr/bin/env bash
# Sets everything up, builds and runs the demo on the embedded Kafka cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product stream-engine
exec .build/release/stream-engine demo "$@"
