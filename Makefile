# wooevents — see README.md. Every target works from a clean clone with Go installed.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN      := bin/wooevents
LDFLAGS  := -X main.Version=$(VERSION) -X github.com/wooevents/wooevents/plugin/wcclient.Version=$(VERSION) -X main.DateBuilt=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)
GO       ?= go
GOTEST_TIMEOUT ?= 9m

.PHONY: all build run demo test test-go test-config bench soak fuzz fmt vet clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/wooevents

# The main job on embedded defaults: a webhook receiver on 0.0.0.0:8080 writing JSONL under ./data/.
run: build
	mkdir -p data
	$(BIN) -c config/default.yaml

# The simulator and a poll pipeline against it: events appear in ./data/demo/ within seconds.
demo: build
	./tests/demo.sh

test: build test-go test-config

test-go:
	$(GO) vet ./...
	WOOEVENTS_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout $(GOTEST_TIMEOUT) ./...

# Lint every pipeline and resource with the built binary, then run their <name>_benthos_test.yaml twins
# (resources on their own, then the pipelines with the resources they use; dedupe.yaml opens a persistent bbolt
# file and is covered by tests/e2e instead).
PIPELINE_RESOURCES := -r ./resources/cloud_elements.yaml -r ./resources/standard_webhooks.yaml \
	-r ./resources/callback.yaml -r ./resources/filters.yaml
test-config: build
	$(BIN) lint ./config/*.yaml ./resources/*.yaml
	$(BIN) test ./resources/...
	$(BIN) test $(PIPELINE_RESOURCES) ./config/...

bench: build
	$(GO) run ./tests/bench/cmd/bench -bin $(BIN) -out tests/bench/results/latest.json

soak: build
	WOOEVENTS_SOAK=1 WOOEVENTS_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 60m ./tests/soak/... ./plugin/...

FUZZTIME ?= 30s
FUZZ_PKGS := ./plugin/wcwebhook ./plugin/wcclient/oauth1 ./plugin/wcevent ./plugin/wcpoll ./plugin/datefmt ./plugin/ceimport
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
