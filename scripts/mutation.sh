#!/usr/bin/env bash
# Mutation testing of the service's core and task path with mutmut (`make mutation`).
#
#   scripts/mutation.sh [MUTANT_NAME_OR_GLOB...]   run (all mutants, or the ones named), then report
#   scripts/mutation.sh --report                   only print the score and the survivors
#
# mutmut derives a module's name from its path, so it runs from .mutation/ (ignored by git): links
# put `agent_service` at the top there, next to the tests and what they import. Its results stay in
# .mutation/mutants/, so a run that hit its budget goes on where it stopped; `rm -rf .mutation`
# starts afresh. The tests need this checkout's PostgreSQL and Redis: run it through
# `scripts/local-services.sh run` (the make target does).
#
# MUTATION_BUDGET (seconds, default 3000) bounds the run; MUTATION_CHILDREN (default 2) is how many
# mutants are tested at once.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd -P)
WORK="$ROOT/.mutation"
BUDGET=${MUTATION_BUDGET:-3000}
CHILDREN=${MUTATION_CHILDREN:-2}
MUTMUT="$ROOT/venv/bin/mutmut"

[ -x "$MUTMUT" ] || { echo "mutation: error: $MUTMUT missing; run make setup" >&2; exit 1; }

mkdir -p "$WORK"
for link in pyproject.toml:service/pyproject.toml agent_service:service/agent_service \
  migrations:service/migrations service:service tests:tests bench:bench policy:policy \
  pytest.ini:pytest.ini; do
  ln -sfn "$ROOT/${link#*:}" "$WORK/${link%%:*}"
done
cd "$WORK"

status=0
if [ "${1:-}" != "--report" ]; then
  : "${TEST_DATABASE_URL:?run through scripts/local-services.sh run (make mutation does)}"
  # One migrated database the tests copy (CREATE DATABASE ... TEMPLATE) instead of migrating a
  # new one for every mutant's pytest session.
  TEST_TEMPLATE_DATABASE=$("$ROOT/venv/bin/python" -c 'import os, sys
from urllib.parse import urlsplit
sys.path.insert(0, sys.argv[1])
from bench import storage
url = storage.create_database(os.environ["TEST_DATABASE_URL"], "agent_mutation_template")
print(urlsplit(url).path.lstrip("/"))' "$ROOT")
  export TEST_TEMPLATE_DATABASE
  # shellcheck disable=SC2329  # called by the EXIT trap
  drop_template() {
    "$ROOT/venv/bin/python" -c 'import os, sys
sys.path.insert(0, sys.argv[1])
from bench import storage
admin = os.environ["TEST_DATABASE_URL"]
storage.drop_database(admin, storage.with_database(admin, os.environ["TEST_TEMPLATE_DATABASE"]))' "$ROOT"
  }
  trap drop_template EXIT
  start=$(date +%s)
  timeout --signal=INT --kill-after=60 "$BUDGET" "$MUTMUT" run --max-children "$CHILDREN" "$@" \
    || status=$?
  echo "mutation: mutmut ran $(( $(date +%s) - start )) s (budget ${BUDGET} s, exit ${status})"
  [ "$status" -eq 124 ] && echo "mutation: budget reached; run again to go on where it stopped"
fi
"$ROOT/venv/bin/python" "$ROOT/scripts/mutation_report.py" "$WORK/mutants" \
  "$ROOT/tests/mutation_equivalent.txt"
exit "$status"
