#!/usr/bin/env bash
# Coverage-guided fuzzing of the JSON parser with libFuzzer and AddressSanitizer.
#   scripts/fuzz-json.sh [seconds]   (default 60; crashes land in .build/fuzz-json/)
# CI runs the seeded mutation test (Tests/StreamValuesTests/JSONParserFuzzTests.swift) instead.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build/fuzz-json
mkdir -p "$out/corpus"
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name StreamValues \
  Sources/StreamValues/*.swift Fuzz/JSONParserFuzzer.swift -o "$out/json-fuzzer"
printf '%s' '{"user":"u1","price":19.99,"items":[1,-0,1e-7,"\u00e9"],"ok":true,"n":null}' > "$out/corpus/seed.json"
cd "$out"
./json-fuzzer -max_total_time="${1:-60}" -max_len=4096 corpus
