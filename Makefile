# wooevents — see README.md. Every target works from a clean clone with Go installed.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN      := bin/wooevents
LDFLAGS  := -X main.Version=$(VERSION) -X github.com/wooevents/wooevents/internal/buildinfo.Version=$(VERSION) -X main.DateBuilt=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)
GO       ?= go
GOTEST_TIMEOUT ?= 9m

.PHONY: all build run demo test test-go lint test-config bench soak fuzz fmt vet clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/wooevents

# config/default.yaml: a webhook receiver on 0.0.0.0:8080 writing JSONL under ./data/ (WOOEVENTS_WEBHOOK_SECRET: set
# your own before exposing the port). Its HTTP server (/ping, /ready, /metrics) is on 127.0.0.1:4195.
run: build
	mkdir -p data
	$(BIN) -c config/default.yaml

# The simulator and a poll pipeline against it: events appear in ./data/demo/ within seconds. The simulator takes a
# free port of 127.0.0.1 (printed) unless SIM_ADDR=host:port says which; a taken SIM_ADDR stops the demo with a message.
demo: build
	./tests/demo.sh

test: build test-go lint test-config

# The component packages (plugin/, internal/) run under the race detector in shuffled order (-shuffle=on prints its
# seed; rerun a failure with -shuffle=<seed>); everything else (tests/, cmd/) runs plainly. Each package runs once.
RACE_PKGS  := ./plugin/... ./internal/...
OTHER_PKGS  = $(shell $(GO) list ./... | grep -v -e '/plugin/' -e '/internal/')
test-go:
	$(GO) vet ./...
	WOOEVENTS_BIN=$(CURDIR)/$(BIN) $(GO) test -race -shuffle=on -count=1 -timeout $(GOTEST_TIMEOUT) $(RACE_PKGS)
	WOOEVENTS_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout $(GOTEST_TIMEOUT) $(OTHER_PKGS)

# golangci-lint at a pinned version (built by `go run` into the Go build cache on first use, a few minutes once),
# over the whole module with .golangci.yml (the standard linters: errcheck, govet, ineffassign, staticcheck, unused; and gofmt -s).
GOLANGCI_LINT_VERSION := v2.15.0
lint:
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) run ./...

# Lint every pipeline and resource with the built binary, then run their <name>_benthos_test.yaml twins. Each
# pipeline carries the resources it uses, so both run exactly as the README shows them (dedupe.yaml opens a
# persistent bbolt file and is covered by tests/e2e instead).
test-config: build
	$(BIN) lint ./config/*.yaml ./resources/*.yaml
	$(BIN) test ./resources/...
	$(BIN) test ./config/...

bench: build
	$(GO) run ./tests/bench/cmd/bench -bin $(BIN) -out tests/bench/results/latest.json

soak: build
	WOOEVENTS_SOAK=1 WOOEVENTS_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 60m ./tests/soak/... ./plugin/...

FUZZTIME ?= 30s
FUZZ_PKGS := ./internal/jsonscan ./plugin/wcwebhook ./plugin/wcclient/oauth1 ./plugin/wcevent ./plugin/wcpoll ./plugin/datefmt ./plugin/ceimport
# Every Fuzz* target of those packages for FUZZTIME each (seed corpora: testdata/fuzz/ and f.Add in the tests).
fuzz:
	@for pkg in $(FUZZ_PKGS); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

fmt:
	gofmt -s -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf bin data
