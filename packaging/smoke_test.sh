#!/usr/bin/env bash
# Smoke-test a built bundle offline: the CLI answers, the bundled sample scans and trains on the
# shipped MobileNet weights (empty Keras cache), the model predicts and exports, and the window
# opens offscreen, waits for TensorFlow and closes itself.
#   bash packaging/smoke_test.sh [dist/tlstudio/tlstudio]
set -euo pipefail
app=$(realpath "${1:-dist/tlstudio/tlstudio}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A fresh home: no settings, no runs, no Keras cache, so nothing can come from a previous run.
export HOME="$work/home" TLSTUDIO_HOME="$work/data" KERAS_HOME="$work/keras"
export QT_QPA_PLATFORM=offscreen TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$HOME"
step() { echo "--- $*"; }

step version
"$app" --version
sample=$(find "$(dirname "$app")" -type d -name sample-signs | head -n 1)
[ -n "$sample" ] || { echo "smoke test failed: the sample dataset is missing from the bundle"; exit 1; }
step scan
"$app" scan "$sample"
step models
"$app" models | grep -i mobilenet
step train
"$app" train "$sample" --epochs 3 --lr 0.01 --out "$work/run" --json | tail -n 1
[ -f "$work/run/model.keras" ] || { echo "smoke test failed: training wrote no model"; exit 1; }
# Keras may write its keras.json there, but no weights file may have been fetched.
[ ! -e "$KERAS_HOME/models" ] || { echo "smoke test failed: weights were downloaded into $KERAS_HOME/models"; exit 1; }
step predict
"$app" predict "$work/run" "$sample/one" --top-k 1 | tail -n 3
step export
"$app" export "$work/run" --format tflite --out "$work/export" --verify
step window
TLSTUDIO_SMOKE_TEST=1 timeout 200 "$app"
echo "smoke test passed: $app"
