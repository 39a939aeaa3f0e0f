#!/usr/bin/env bash
# The Debian 12 packages the tests run against: finds the missing ones and installs them with apt-get
# (as root, or through `sudo -n`), saying what and why. `make test` runs it first; `make setup` alone.
#
#   SKIP_DEBIAN_PACKAGES=1   check and install nothing (you provide these programs yourself)
#   --list                   print the packages and why, and exit
#
# Where it cannot install (not Debian, not root and no password-less sudo, apt-get failing) it exits 1
# with one message naming the packages and the command, before any test runs.
set -uo pipefail

# One line a package: its Debian name, then why the tests need it.
PACKAGES='
nginx-light             the local gateway runs the plugins in Debian'"'"'s nginx
libnginx-mod-http-lua   lua-nginx-module, the Lua in nginx that Kong is built on
lua-resty-core          the ngx.* API lua-nginx-module loads at start
luajit2                 LuaJIT (OpenResty'"'"'s branch, as in Kong) for the busted specs
lua-busted              busted, the runner of the Lua specs
lua-check               luacheck, the Lua lint
lua-cjson               cjson for the Lua specs, as OpenResty bundles it
redis-server            the redis policy of token-rate-limiting, tested against a real server
wrk                     the benchmark'"'"'s load generator (make bench)
docker-compose          validates docker-compose.yml without a Docker engine
ffmpeg                  the video service decodes frames with it
chromium                the video page, tested in a headless browser
prometheus              the metrics suites scrape the gateway with a real Prometheus server
'

names=() reasons=()
while read -r name reason; do
  [ -n "$name" ] || continue
  names+=("$name"); reasons+=("$reason")
done <<< "$PACKAGES"

say() { printf 'setup: %s\n' "$*"; }
why() { # the packages given, one a line with why
  local p i
  for p in "$@"; do
    for i in "${!names[@]}"; do [ "${names[$i]}" = "$p" ] && printf '  %-22s %s\n' "$p" "${reasons[$i]}"; done
  done
}
install_cmd() { printf 'apt-get install -y --no-install-recommends %s' "$*"; }

if [ "${1:-}" = "--list" ]; then why "${names[@]}"; exit 0; fi

if [ -n "${SKIP_DEBIAN_PACKAGES:-}" ] && [ "${SKIP_DEBIAN_PACKAGES}" != 0 ]; then
  say "SKIP_DEBIAN_PACKAGES is set: not checking the Debian packages the tests need"
  exit 0
fi

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  say "this is not a Debian system (no dpkg-query/apt-get): the tests need these Debian 12 packages' programs:"
  why "${names[@]}"
  say "install them another way, then run: SKIP_DEBIAN_PACKAGES=1 make test"
  exit 1
fi

missing() { # the packages dpkg does not list as installed
  local installed=" " pkg status
  while read -r pkg status; do
    [ "$status" = "install ok installed" ] && installed+="$pkg "
  done < <(dpkg-query -W -f='${Package} ${Status}\n' "${names[@]}" 2>/dev/null)
  for pkg in "${names[@]}"; do [[ "$installed" == *" $pkg "* ]] || printf '%s\n' "$pkg"; done
}

mapfile -t todo < <(missing)
if [ ${#todo[@]} -eq 0 ]; then
  say "the ${#names[@]} Debian packages the tests need are installed"
  exit 0
fi

as_root=()
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null; then
    say "the tests need ${#todo[@]} Debian packages that are missing, and this user is not root and has no sudo:"
    why "${todo[@]}"
    say "as root, run: $(install_cmd "${todo[@]}")"
    exit 1
  fi
  if ! sudo -n true 2>/dev/null; then
    say "the tests need ${#todo[@]} Debian packages that are missing, and sudo asks for a password:"
    why "${todo[@]}"
    say "run: sudo $(install_cmd "${todo[@]}")   (or 'sudo -v' first, then make test again)"
    exit 1
  fi
  as_root=(sudo -n)
fi

say "installing ${#todo[@]} Debian packages the tests need${as_root:+ (through sudo)}:"
why "${todo[@]}"

apt() { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }

# Refresh the package lists only when one of the packages has no candidate (a fresh image ships none).
updated=0
for p in "${todo[@]}"; do
  if [[ "$(apt-cache policy "$p" 2>/dev/null)" != *"Candidate: "[!\(]* ]]; then
    say "apt-get update (no candidate for $p yet)"
    apt update -qq || { say "apt-get update failed: install the packages by hand: $(install_cmd "${todo[@]}")"; exit 1; }
    updated=1
    break
  fi
done

if ! apt install -y -q --no-install-recommends "${todo[@]}"; then
  ok=0
  if [ "$updated" = 0 ]; then
    # Stale lists point at files the mirror no longer has: refresh them once and try again.
    say "apt-get install failed: apt-get update, then one more try"
    apt update -qq && apt install -y -q --no-install-recommends "${todo[@]}" && ok=1
  fi
  [ "$ok" = 1 ] || { say "could not install the packages: run $(install_cmd "${todo[@]}") and see what apt-get says"; exit 1; }
fi

mapfile -t left < <(missing)
if [ ${#left[@]} -gt 0 ]; then
  say "apt-get finished but these packages are still not installed: ${left[*]}"
  exit 1
fi
say "installed: ${todo[*]}"
