#!/usr/bin/env bash
# Mutation testing of the rules (run by hand, never in CI; see docs/reliability.md):
#
#   bash adapters/tests/mutation/run.sh [MUTANT_GLOB...]
#
# Copies this tree to a private directory (default /tmp/gateway-mutation, or
# $MUTATION_WORKDIR) so that no mutant is ever visible in the working tree, installs both
# distributions (gateway-core with its `test` and `mutation` extras, and the Faspay DANA plugin
# from adapters/faspay_dana) into a virtualenv there (once), and runs mutmut (configured in
# [tool.mutmut] of pyproject.toml) over the state machine, the Faspay signature module and the
# service's rule paths. Without arguments it runs the default scope below; with arguments, only
# the mutants whose names match (fnmatch), e.g. 'gateway_core._state*'. MUTATION_JOBS sets the
# number of workers (default 12: the tests mostly wait on loopback I/O). Ends with the
# survivors and a killed/total count per module.
#
# mutmut names a mutant by its file's path relative to the directory it runs in, and its
# trampolines only switch a mutant on when that name equals the module's import name. The plugin
# package lives at adapters/faspay_dana/gateway_faspay_dana/ (import name gateway_faspay_dana),
# so in the copy (only there) it is moved to the top level, ./gateway_faspay_dana/, and the old
# place becomes a symlink to it, which keeps the plugin's editable install working.
set -euo pipefail

source_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
work="${MUTATION_WORKDIR:-/tmp/gateway-mutation}"
copy="$work/src"
venv="$work/venv"
python="${PYTHON:-python3}"

mkdir -p "$copy"
plugin=adapters/faspay_dana/gateway_faspay_dana
# A fresh copy every run: rsync --delete would otherwise trip over the symlink made below.
rm -rf "$copy"
mkdir -p "$copy"
rsync -a --exclude .git --exclude .venv --exclude mutants --exclude __pycache__ \
    --exclude .mypy_cache --exclude .ruff_cache --exclude .pytest_cache --exclude '*.egg-info' \
    "$source_dir/" "$copy/"
mv "$copy/$plugin" "$copy/gateway_faspay_dana"
ln -s ../../gateway_faspay_dana "$copy/$plugin"
if [ ! -x "$venv/bin/mutmut" ] || [ ! -e "$work/installed" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    # Editable installs point at $copy, which keeps its path from run to run.
    "$venv/bin/pip" install -q -e "$copy[test,mutation]" -e "$copy/adapters/faspay_dana" \
        > "$work/install.log" 2>&1 || {
        tail -n 20 "$work/install.log"
        exit 1
    }
    touch "$work/installed"
fi
cd "$copy"
# The copy, not the original tree, is what the tests import (both distributions).
"$venv/bin/python" - "$copy" <<'PY'
import os, sys
import gateway_core, gateway_faspay_dana
for module in (gateway_core, gateway_faspay_dana):
    path = os.path.realpath(module.__file__)
    assert path.startswith(sys.argv[1] + "/"), path
PY

# The service's rule paths, wherever in gateway_core/_service*.py each method now lives.
service='gateway_core._service*ǁ'
if [ "$#" -eq 0 ]; then
    set -- 'gateway_core._state*' 'gateway_faspay_dana._signature*' \
        "${service}_apply__mutmut_*" "${service}_review__*" "${service}handle_notification__*" \
        "${service}receive_notification__*" "${service}_decide_notification__*" \
        "${service}_mismatch__*" "${service}_report_mismatch__*" "${service}_confirm*" \
        "${service}_adopt_reference__*" "${service}start_payment__*" "${service}reconcile__*"
fi

rm -rf mutants
# Most test time is loopback I/O and server shutdown waits: more workers than cores pay off.
"$venv/bin/mutmut" run --max-children "${MUTATION_JOBS:-12}" "$@" > "$work/mutmut-run.log" 2>&1 || {
    tail -c 4000 "$work/mutmut-run.log"
    exit 1
}
"$venv/bin/mutmut" results --all true > "$work/results.txt"
echo "survivors (full list of verdicts in $work/results.txt):"
grep -E ': (survived|timeout|suspicious|no tests)' "$work/results.txt" || echo "  none"
echo "killed / total per module (only the mutants selected above):"
"$venv/bin/python" - "$work/results.txt" "$@" <<'PY'
import collections, fnmatch, sys

path, patterns = sys.argv[1], sys.argv[2:]
counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
for line in open(path, encoding="utf-8"):
    name, _, verdict = line.strip().rpartition(": ")
    if not name or not any(fnmatch.fnmatch(name, p) for p in patterns):
        continue
    module = name.split(".x", 1)[0]
    counts[module][verdict] += 1
for module, c in sorted(counts.items()):
    total = sum(c.values())
    print(f"  {module}: {c['killed']} killed / {total} ({dict(c)})")
PY
