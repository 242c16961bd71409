#!/usr/bin/env bash
# Every C++ file is formatted by .clang-format (clang-format 14).
set -euo pipefail
cd "$(dirname "$0")/../.."
files=$(find src tests -name '*.cpp' -o -name '*.h')
# shellcheck disable=SC2086
clang-format --dry-run --Werror $files
echo "$(echo "$files" | wc -l) files formatted"
