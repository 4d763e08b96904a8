# tapproof: the two commands a newcomer needs are `make demo` and `make test`.
# Everything they use is installed or built by the project itself; built
# components are cached in $TAPPROOF_CACHE (default ~/.cache/tapproof).

GO      ?= go
BIN     := bin/tapproof
DEMO    := bin/tapproof-demo
TIMEOUT ?= 45m

.PHONY: all build demo demo-cluster test lint unit bench deps deps-demo generate clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/tapproof

# The demo runs as make's own child rather than under `go run`, which does
# not pass SIGTERM on. Ctrl-C stops it, and it and make exit 0.

## demo: the whole platform on real components with simulated sensors.
demo: deps-demo build
	$(GO) build -o $(DEMO) ./deploy/local
	$(DEMO) --tapproof $(BIN)

## demo-cluster: the same on a cluster of three nats-servers, with two tapproof replicas sharing the work.
demo-cluster: deps-demo build
	$(GO) build -o $(DEMO) ./deploy/local
	$(DEMO) --tapproof $(BIN) --cluster --dir .data/demo-cluster

## test: formatting, vet, staticcheck, then every test (unit and integration
## on real NATS JetStream, InfluxDB and Trillian on PostgreSQL) with -race.
test: deps lint
	$(GO) test -race -timeout $(TIMEOUT) ./...

## unit: the fast tests only (no PostgreSQL, Trillian or InfluxDB).
unit:
	$(GO) test -race -short ./...

## bench: the load benchmark on the real stack (3 runs of 60 s at 6,000 readings/s).
bench: deps-demo
	$(GO) run ./bench -out bench-results.json $(BENCHFLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## deps: system packages the tests use: those of deps-demo, and promtool,
## xmllint, Chromium, Node.js and npm (only the tests use a browser).
deps:
	@scripts/deps.sh test

## deps-demo: system packages the demo and the bench use: PostgreSQL,
## OpenSSH's client tools (the witnesses' ssh-agent).
deps-demo:
	@scripts/deps.sh demo

generate:
	$(GO) generate ./...

clean:
	rm -rf bin .data
