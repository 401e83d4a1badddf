#!/usr/bin/env bash
# Build the one-folder desktop bundle with PyInstaller, then smoke-test it offscreen.
#   bash packaging/build.sh            -> dist/tlstudio/tlstudio  (run it; no arguments opens the app)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e ".[dev]"
.venv/bin/pyinstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/tlstudio.spec
# Desktop integration files travel with the bundle (copy them to ~/.local/share to install).
mkdir -p dist/tlstudio/share/applications dist/tlstudio/share/icons/hicolor/scalable/apps
cp packaging/tlstudio.desktop dist/tlstudio/share/applications/
cp resources/icons/tlstudio.svg dist/tlstudio/share/icons/hicolor/scalable/apps/
for s in 16 24 32 48 64 128 256 512; do
  mkdir -p "dist/tlstudio/share/icons/hicolor/${s}x${s}/apps"
  cp "resources/icons/tlstudio-${s}.png" "dist/tlstudio/share/icons/hicolor/${s}x${s}/apps/tlstudio.png"
done
bash packaging/smoke_test.sh dist/tlstudio/tlstudio
