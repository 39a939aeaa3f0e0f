# Kong plugins in TypeScript: build, test, run.
SHELL := /bin/bash
NPX   := npx --no-install
PLUGINS := $(patsubst plugins/%/handler.ts,%,$(wildcard plugins/*/handler.ts))

.PHONY: all build lua rockspecs image setup typecheck lint busted vitest test new-plugin dev bench bench-smoke up down e2e clean

all: build

## build: type-check and transpile every plugin to dist/kong/plugins, write rockspecs, build the Kong image when Docker answers
build: lua rockspecs image

lua: node_modules/.package-lock.json
	@rm -rf dist/kong
	$(NPX) tstl -p tsconfig.json
	@node tools/check-dist.mjs

rockspecs: lua
	@node tools/rockspec.mjs

image: lua
	@if docker info >/dev/null 2>&1; then \
	  docker build -f kong/Dockerfile -t $${KONG_IMAGE:-kong-ts-ai:latest} . ; \
	else \
	  echo "no Docker engine answers here: skipped the Kong image (dist/ holds the Lua plugin tree)"; \
	fi

# onnxruntime-node carries its CPU binaries; its install script would fetch CUDA extras from outside
# the npm registry. Skipped unless asked for: ONNXRUNTIME_NODE_INSTALL=cuda12 make build (after rm -rf node_modules).
node_modules/.package-lock.json: package-lock.json
	ONNXRUNTIME_NODE_INSTALL=$${ONNXRUNTIME_NODE_INSTALL:-skip} npm ci --no-audit --no-fund

typecheck: node_modules/.package-lock.json
	$(NPX) tsc -p tsconfig.json --noEmit
	$(NPX) tsc -p tsconfig.node.json --noEmit

lint: lua
	luacheck --quiet --config .luacheckrc dist gateway/lua spec

busted: lua
	luajit /usr/bin/busted

vitest: lua
	$(NPX) vitest run

## setup: install the Debian packages the tests need, when missing (SKIP_DEBIAN_PACKAGES=1: leave them to you)
setup:
	@bash tools/setup-debian.sh

## test: type check, Lua lint, busted, vitest; one summary line at the end
test: setup node_modules/.package-lock.json
	@bash tools/run-tests.sh

## new-plugin NAME=x: scaffold plugins/x with a handler, schema and specs
new-plugin:
	@test -n "$(NAME)" || { echo "usage: make new-plugin NAME=my-plugin"; exit 2; }
	$(NPX) tsx tools/new-plugin.ts $(NAME)

## dev: the local gateway with kong/kong.yml and the local upstreams, for trying with curl
dev: lua
	$(NPX) tsx tools/dev.ts

## bench: CPU cost per streamed event and per request of each plugin, as ratios measured in one run (results in build/bench/)
bench: lua
	$(NPX) tsx bench/run.ts

## bench-smoke: the benchmark harness in under a minute, failing on any error (numbers meaningless)
bench-smoke: lua
	$(NPX) tsx bench/run.ts --smoke

up: build
	docker compose up -d --wait

down:
	docker compose down -v

e2e: build
	bash tools/e2e.sh

clean:
	rm -rf dist build
