#!/usr/bin/env bash
# Smoke-test a built bundle: the CLI answers, the bundled sample scans, the window opens offscreen.
set -euo pipefail
app=${1:-dist/tlstudio/tlstudio}
export QT_QPA_PLATFORM=offscreen TF_CPP_MIN_LOG_LEVEL=2
"$app" --version
sample=$(find "$(dirname "$app")" -type d -name sample-signs | head -n 1)
[ -n "$sample" ] || { echo "smoke test: the sample dataset is missing from the bundle"; exit 1; }
"$app" scan "$sample" --json > /dev/null
"$app" models > /dev/null
# The window: the app quits by itself once it is shown and TensorFlow has loaded.
TLSTUDIO_SMOKE_TEST=1 timeout 180 "$app"
echo "smoke test passed: $app"
