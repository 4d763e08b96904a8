# tapproof: the two commands a newcomer needs are `make demo` and `make test`.
# Everything they use is installed or built by the project itself; built
# components are cached in $TAPPROOF_CACHE (default ~/.cache/tapproof).

GO      ?= go
BIN     := bin/tapproof
TIMEOUT ?= 45m

.PHONY: all build demo demo-cluster test lint unit bench deps deps-demo generate clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/tapproof

## demo: the whole platform on real components with simulated sensors.
demo: deps-demo build
	$(GO) run ./deploy/local --tapproof $(BIN)

## demo-cluster: the same on a cluster of three nats-servers, with two tapproof replicas sharing the work.
demo-cluster: deps-demo build
	$(GO) run ./deploy/local --tapproof $(BIN) --cluster --dir .data/demo-cluster

## test: formatting, vet, staticcheck, then every test (unit and integration
## on real NATS JetStream, InfluxDB and Trillian on PostgreSQL) with -race.
test: deps lint
	$(GO) test -race -timeout $(TIMEOUT) ./...

## unit: the fast tests only (no PostgreSQL, Trillian or InfluxDB).
unit:
	$(GO) test -race -short ./...

## bench: the load benchmark on the real stack (3 runs of 60 s at 6,000 readings/s).
bench: deps
	$(GO) run ./bench -out bench-results.json $(BENCHFLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## deps: system packages the stack and tests use (PostgreSQL, promtool, xmllint, Chromium, npm).
deps:
	@scripts/deps.sh test

## deps-demo: what the demo alone needs (PostgreSQL): no browser.
deps-demo:
	@scripts/deps.sh demo

generate:
	$(GO) generate ./...

clean:
	rm -rf bin .data
