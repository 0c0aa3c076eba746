#!/usr/bin/env bash
# The second OCR engine (vpr_assets/core/text/second_engine.py): Debian's Tesseract with the
# language models for captions the offline EasyOCR weights cannot read (Japanese, Chinese
# traditional, Korean, Russian, with Ukrainian and Belarusian for a card already known to be Cyrillic, and English
# as the Latin competitor that keeps Latin print Latin), DejaVu fonts for the tests that render Cyrillic, and
# the Nanum fonts for the tests and the bench that render Hangul (no real Korean set was found).
# Run as root (CI does, from .ci/run); idempotent and quick when already installed.
# Without it the pipeline still runs: Latin captions are read by EasyOCR alone (fewer words on accented print), other scripts stay unread
# (the OCR settings hash records which languages were usable, so cards are re-read once installed).
set -euo pipefail

PACKAGES=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-jpn tesseract-ocr-chi-tra tesseract-ocr-kor tesseract-ocr-rus tesseract-ocr-ukr tesseract-ocr-bel fonts-dejavu-core fonts-nanum)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup_tesseract.sh: $(tesseract --version 2>&1 | head -1), languages: $(tesseract --list-langs 2>/dev/null | tail -n +2 | tr '\n' ' ')"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "setup_tesseract.sh: missing ${missing[*]}; run as root (or: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup_tesseract.sh: installed ${missing[*]}"
