#!/usr/bin/env bash
# OS packages the tests use that pip cannot provide: tesseract (OCR of
# scanned PDF pages). Installed with apt-get when it is missing and we may
# (root on Debian/Ubuntu); otherwise a note, and the OCR tests skip saying why.
# The product itself runs without it: scanned pages are reported as skipped.
set -euo pipefail
if command -v tesseract > /dev/null; then
  exit 0
fi
if [[ $(id -u) -eq 0 ]] && command -v apt-get > /dev/null; then
  echo "os-packages: installing tesseract-ocr (OCR of scanned PDF pages)"
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends tesseract-ocr > /tmp/semantik-apt.log 2>&1 \
    || { apt-get update -q > /dev/null 2>&1 \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends tesseract-ocr > /tmp/semantik-apt.log 2>&1; }; then
    exit 0
  fi
  echo "os-packages: could not install tesseract-ocr (see /tmp/semantik-apt.log); OCR tests will skip"
else
  echo "os-packages: tesseract not found; install tesseract-ocr for OCR (its tests skip without it)"
fi
