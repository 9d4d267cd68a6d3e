#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/browser): Playwright drives /usr/bin/chromium headless
# instead of downloading its own browser build. Runs as root on Debian; idempotent: does nothing when
# /usr/bin/chromium is already there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version
