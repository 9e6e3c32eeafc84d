#!/usr/bin/env bash
# Debian's headless Chromium and its WebDriver, for the web page's end-to-end test
# (tests/service/test_page_browser.py). Skipped when already installed; needs root (or sudo) for apt.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo "sudo")
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
