# ovs-dlb. The README's two commands: `make demo` and `make test`.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := $(CURDIR)/bin
# Fuzz budgets of `make test`: counts of executions (-fuzztime Nx), each
# about 15 s on a loaded 2-core machine. Not durations: a duration trips Go
# 1.26's fuzzing coordinator race (golang/go#75804, fixed in Go 1.27), which
# fails a target with "context deadline exceeded" and nothing found when the
# machine is busy. A count never arms that deadline.
FUZZ_GROUP_DOCUMENT ?= 200000x
FUZZ_HANDLERS ?= 100000x
FUZZ_ACTIONS ?= 200000x
FUZZ_DESCS ?= 400000x

.PHONY: all deps build test unit lint bench bench-lc demo clean

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
	DLB_BIN_DIR=$(BIN) $(GO) test -count=1 -timeout 40m ./...
	$(GO) test -run '^$$' -fuzz '^FuzzGroupDocument$$' -fuzztime $(FUZZ_GROUP_DOCUMENT) ./controller/store
	$(GO) test -run '^$$' -fuzz '^FuzzHandlers$$' -fuzztime $(FUZZ_HANDLERS) ./controller/api
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeActions$$' -fuzztime $(FUZZ_ACTIONS) ./ofctrl
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeFlowDesc$$' -fuzztime $(FUZZ_DESCS) ./ofctrl
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeGroupDesc$$' -fuzztime $(FUZZ_DESCS) ./ofctrl

## unit: the unit tests alone (-short: no root, no OVS, nothing installed; under a minute)
unit:
	$(GO) test -short -count=1 ./...

## bench: benchmarks that print ratios and medians
bench: deps build
	DLB_BIN_DIR=$(BIN) $(GO) test -run '^$$' -bench . -benchtime 5x -count 1 -timeout 30m ./...
	@$(MAKE) --no-print-directory bench-lc

## bench-lc: the least-connections cases on the testbed (issue 18), side
## by side in one run each, and their figures
LC_CASES = TestGlobalLeastConnections|TestSlowMember|TestNoHerd|TestStableShares|TestLeastConnectionsControllerDown
bench-lc: deps build
	@DLB_BIN_DIR=$(BIN) $(GO) test -count=1 -v -timeout 20m -run '^($(LC_CASES))$$' ./cmd/dlb-agent > $(BIN)/bench-lc.log 2>&1; rc=$$?; \
	grep -E 'max/mean|largest swing|controller killed|none failed|^(--- |ok|FAIL)' $(BIN)/bench-lc.log; exit $$rc

## demo: the main job on the testbed (KEEP=1 leaves it running)
demo: deps build
	@bash deploy/demo.sh

clean:
	rm -rf $(BIN)
