# frontgate — see README.md. Every tool a target needs is built from the Go
# module proxy by the project's own files (test/tools) and cached outside the
# checkout, keyed by version.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# The exact flags the Dockerfile builds with.
BUILDFLAGS = -trimpath -ldflags "-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)"
LINT       = $(GO) tool -modfile=test/tools/lint/go.mod
FUZZTIME  ?= 10s

.PHONY: all build test lint unit tools demo fuzz image clean

all: build

## build: the static frontgate binary in bin/
build:
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o bin/frontgate ./cmd/frontgate

## test: everything CI runs — formatting, vet, staticcheck, unit and end-to-end tests (race detector on), a short fuzz run
test: lint tools
	FRONTGATE_TOOLS_DIR="$$(test/tools/install.sh print-dir)" $(GO) test -race -count=1 -timeout 45m ./...
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)

## lint: gofmt, go vet and staticcheck (pinned in test/tools/lint)
lint:
	@unformatted="$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(LINT) staticcheck ./...

## unit: the tests that need no real cluster
unit:
	$(GO) test -race -count=1 ./auth/... ./proxy/... ./cmd/...

## tools: build (first time, ~10-20 min) or reuse kube-apiserver, etcd, kubectl and the OpenID provider
tools:
	test/tools/install.sh

## demo: frontgate in front of a real local kube-apiserver with a real OpenID provider; Ctrl-C stops it all
demo: tools
	FRONTGATE_TOOLS_DIR="$$(test/tools/install.sh print-dir)" $(GO) run ./test/demo

## fuzz: each fuzz target for FUZZTIME (make fuzz FUZZTIME=5m for a longer run)
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzIdentityRoundTrip$$' -fuzztime=$(FUZZTIME) ./proxy/

## image: the container image (needs a Docker engine with buildx)
image:
	docker buildx build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t frontgate:$(VERSION) .

clean:
	rm -rf bin
