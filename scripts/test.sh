#!/usr/bin/env bash
# The test command: the whole suite, fast and slow tests, PostgreSQL and browser tests.
# Run `bash scripts/setup.sh` once first. PostgreSQL: if INSTRUCTREC_TEST_PG_URL is unset,
# a throwaway server is started with scripts/start_postgres.sh (installing Debian's package
# when run as root). Browser tests need Debian's chromium (`apt-get install -y chromium`).
# When either cannot be had, those tests are deselected, loudly (under CI=true: an error);
# `.ci/run` provides both.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
markers="slow or not slow"
started_pg=""
if [ -z "${INSTRUCTREC_TEST_PG_URL:-}" ]; then
  if out="$(bash scripts/start_postgres.sh 2>/tmp/instructrec-pg.log)"; then
    eval "$out"; started_pg=1
  else
    echo "test.sh: no PostgreSQL (see /tmp/instructrec-pg.log): DESELECTING postgres tests" >&2
    [ -z "${CI:-}" ] || { cat /tmp/instructrec-pg.log >&2; exit 1; }
    markers="($markers) and not postgres"
  fi
fi
if [ ! -x "${INSTRUCTREC_CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "test.sh: no chromium (apt-get install -y chromium): DESELECTING browser tests" >&2
  [ -z "${CI:-}" ] || exit 1
  markers="($markers) and not browser"
elif ! .venv/bin/python -c "import playwright" >/dev/null 2>&1; then
  echo "test.sh: no playwright (EXTRAS=browser bash scripts/setup.sh): DESELECTING browser tests" >&2
  [ -z "${CI:-}" ] || exit 1
  markers="($markers) and not browser"
fi
stop_pg() {
  [ -n "$started_pg" ] && [ -n "${INSTRUCTREC_PG_DATA:-}" ] || return 0
  local ctl; ctl=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)/pg_ctl
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$ctl" -D "$INSTRUCTREC_PG_DATA" -m fast stop
  else "$ctl" -D "$INSTRUCTREC_PG_DATA" -m fast stop; fi >/dev/null 2>&1 || true
}
trap stop_pg EXIT
.venv/bin/python -m pytest -m "$markers" -p no:cacheprovider "$@"
