#!/usr/bin/env bash
# make e2e: the stack suites (spec/stack) against real Kong in docker compose.
#   1. brings the stack up (docker-compose.yml, images built), waits until every service is healthy
#   2. runs the vitest HTTP suites with KONG_PROXY_URL pointing at Kong's proxy
#   3. checks Kong's log for upstream-disconnect-log records, then brings the stack down (down -v)
#
# Environment:
#   E2E_PROFILES=gpu,db   also start vLLM + SGLang (gpu: their tests run instead of being skipped) and/or
#                         Kong on PostgreSQL (db: the suites run a second time against it, and the
#                         config import is re-run to prove it is idempotent)
#   E2E_KEEP=1            leave the stack running afterwards
#   E2E_WAIT_TIMEOUT=S    seconds to wait for health (default 600; 1800 with gpu: first model download)
#   E2E_SUITES="..."      vitest files to run (default: the stack's HTTP suites)
#   DOCKER=docker         the docker CLI
#   E2E_ENV_FILE=.env     where the published ports are read from when present (KONG_PROXY_PORT,
#                         KONG_DB_PROXY_PORT, MOCK_LLM_PORT); .env is the file docker compose reads
set -uo pipefail
cd "$(dirname "$0")/.."

DOCKER=${DOCKER:-docker}
if ! "$DOCKER" info >/dev/null 2>&1; then
  echo "e2e: no Docker engine answers ('$DOCKER info' failed): the e2e suites need the compose stack; 'make test' runs the same suites against the local gateway" >&2
  exit 1
fi
if "$DOCKER" compose version >/dev/null 2>&1; then
  COMPOSE=("$DOCKER" compose)
elif command -v docker-compose >/dev/null 2>&1; then
  COMPOSE=(docker-compose)
else
  echo "e2e: neither '$DOCKER compose' nor docker-compose is installed" >&2
  exit 1
fi

ENV_FILE=${E2E_ENV_FILE:-.env}
if [ -f "$ENV_FILE" ]; then set -a; . "$ENV_FILE"; set +a; fi
KONG_PROXY_PORT=${KONG_PROXY_PORT:-8000}
KONG_DB_PROXY_PORT=${KONG_DB_PROXY_PORT:-8010}
MOCK_LLM_PORT=${MOCK_LLM_PORT:-9000}

profiles=() gpu=0 db=0
IFS=', ' read -r -a wanted <<<"${E2E_PROFILES:-}"
for p in "${wanted[@]}"; do
  case $p in
    gpu) gpu=1; profiles+=(--profile gpu) ;;
    db) db=1; profiles+=(--profile db) ;;
    "") ;;
    *) echo "e2e: unknown profile '$p' in E2E_PROFILES (gpu, db)" >&2; exit 2 ;;
  esac
done
default_wait=600; [ $gpu = 1 ] && default_wait=1800
WAIT_TIMEOUT=${E2E_WAIT_TIMEOUT:-$default_wait}
SUITES=${E2E_SUITES:-"spec/stack/routes.test.ts spec/stack/stream-abort.test.ts spec/stack/timeout.test.ts"}

compose() { "${COMPOSE[@]}" "${profiles[@]}" "$@"; }

status=1
finish() {
  if [ $status -ne 0 ]; then
    echo "== e2e failed; last lines of each service's log:"
    compose logs --no-color --tail 60 2>&1 | tail -400
  fi
  if [ "${E2E_KEEP:-0}" = 1 ]; then
    echo "== E2E_KEEP=1: the stack is still running ('${COMPOSE[*]} ${profiles[*]} down -v' stops it)"
  else
    echo "== bringing the stack down"
    compose down -v --remove-orphans >/dev/null 2>&1
  fi
  exit $status
}
trap finish EXIT

echo "== starting the stack: ${COMPOSE[*]} ${profiles[*]} up -d --build"
compose up -d --build || exit 1

# Healthy = every service of the active profiles has a container that is healthy, or (one-shot jobs)
# that exited 0. docker-compose 1.29 has no `up --wait`, so this loop serves both CLIs.
echo "== waiting up to ${WAIT_TIMEOUT}s for every service to be healthy"
# The services of the active profiles (docker-compose 1.29's `config --services` lists every profile's).
active=()
[ $gpu = 1 ] && active+=(gpu)
[ $db = 1 ] && active+=(db)
mapfile -t services < <(node --input-type=module -e '
import { readFileSync } from "node:fs"; import { parse } from "yaml";
const active = new Set(process.argv.slice(1));
const doc = parse(readFileSync("docker-compose.yml", "utf8"), { merge: true });
for (const [name, svc] of Object.entries(doc.services)) {
  const profiles = svc.profiles ?? [];
  if (profiles.length === 0 || profiles.some((p) => active.has(p))) console.log(name);
}' "${active[@]}")
deadline=$((SECONDS + WAIT_TIMEOUT))
while :; do
  pending=() failed=()
  for svc in "${services[@]}"; do
    id=$(compose ps -a -q "$svc" 2>/dev/null | head -1)
    if [ -z "$id" ]; then pending+=("$svc(no container)"); continue; fi
    read -r state health code < <("$DOCKER" inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.ExitCode}}' "$id")
    case "$state/$health" in
      running/healthy) ;;
      exited/none) [ "$code" = 0 ] || failed+=("$svc(exited $code)") ;;
      */unhealthy) failed+=("$svc(unhealthy)") ;;
      exited/* | dead/*) failed+=("$svc($state $code)") ;;
      *) pending+=("$svc($state/$health)") ;;
    esac
  done
  if [ ${#failed[@]} -gt 0 ]; then echo "e2e: failed: ${failed[*]}" >&2; exit 1; fi
  [ ${#pending[@]} -eq 0 ] && break
  if [ $SECONDS -ge $deadline ]; then echo "e2e: not healthy after ${WAIT_TIMEOUT}s: ${pending[*]}" >&2; exit 1; fi
  sleep 3
done
echo "== healthy: ${services[*]}"

run_suites() { # proxy URL, label
  echo "== vitest against $2 ($1); E2E_GPU=$gpu"
  KONG_PROXY_URL=$1 MOCK_LLM_URL=http://127.0.0.1:$MOCK_LLM_PORT E2E_GPU=$gpu \
    npx --no-install vitest run --reporter=verbose $SUITES
}

failures=0
run_suites "http://127.0.0.1:$KONG_PROXY_PORT" "Kong (DB-less)" || failures=$((failures + 1))

if [ $db = 1 ]; then
  echo "== re-running the config import (it runs on every start, so it must succeed on a loaded database)"
  compose run --rm kong-import || failures=$((failures + 1))
  run_suites "http://127.0.0.1:$KONG_DB_PROXY_PORT" "Kong (PostgreSQL)" || failures=$((failures + 1))
fi

# The stream-abort suite aborts streams mid-way: real Kong must have logged those with our plugin.
records=$(compose logs --no-color kong 2>&1 | grep -F '[upstream-disconnect]' || true)
count=$(printf '%s' "$records" | grep -c . || true)
echo "== [upstream-disconnect] records in Kong's log: $count"
printf '%s\n' "$records" | head -5
if ! printf '%s' "$records" | grep -q '"outcome":"client_abort"'; then
  echo "e2e: no client_abort record from upstream-disconnect-log in Kong's log" >&2
  failures=$((failures + 1))
fi

[ $failures -eq 0 ] && status=0
exit $status
