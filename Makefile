# ovs-dlb. The README's two commands: `make demo` and `make test`.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := $(CURDIR)/bin
# FUZZTIME: how long `make test` fuzzes each fuzz target
FUZZTIME ?= 15s

.PHONY: all deps build test lint bench demo clean

all: build

## deps: install what a fresh Debian 12 machine lacks (OVS, iproute2, ...) and the Go modules
deps:
	@bash .ci/install-deps

## build: every binary of cmd/ into bin/
build:
	$(GO) build -o $(BIN)/ ./cmd/...

## lint: gofmt and go vet
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

## test: unit and end-to-end tests (end-to-end ones need root and OVS; under CI=true they never skip)
test: deps build lint
	DLB_BIN_DIR=$(BIN) $(GO) test -count=1 -timeout 20m ./...
	$(GO) test -run '^$$' -fuzz '^FuzzGroupDocument$$' -fuzztime $(FUZZTIME) ./controller/store
	$(GO) test -run '^$$' -fuzz '^FuzzHandlers$$' -fuzztime $(FUZZTIME) ./controller/api

## bench: benchmarks that print ratios and medians
bench: deps build
	DLB_BIN_DIR=$(BIN) $(GO) test -run '^$$' -bench . -benchtime 5x -count 1 -timeout 30m ./...

## demo: the main job on the testbed (KEEP=1 leaves it running)
demo: deps build
	@bash deploy/demo.sh

clean:
	rm -rf $(BIN)
