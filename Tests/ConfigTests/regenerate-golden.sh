#!/usr/bin/env bash
# Rewrites every Golden/*.expected from what `ssogate check` reports now. Read the diff
# before committing: the point of a golden file is that a person agreed with it.
set -euo pipefail
here=$(cd "$(dirname "$0")/Golden" && pwd)
bin=${1:-$(cd "$here/../../.." && pwd)/.build/debug/ssogate}
cd "$here"
for f in *.yaml; do
  name=${f%.yaml}
  if out=$(env -i PATH="$PATH" SSOGATE_TEST_SECRET=0123456789abcdef0123456789abcdef-from-env "$bin" check --config "$f" 2>&1); then
    echo ok > "$name.expected"
  else
    printf '%s\n' "$out" | sed "s|^$f: ||" > "$name.expected"
  fi
done
