# frontgate — see README.md. Every tool a target needs is built from the Go
# module proxy by the project's own files (test/tools) and cached outside the
# checkout, keyed by version.

GO        ?= go
# The Go toolchain every target builds and tests with. go1.27.3 fixes
# standard-library vulnerabilities of go1.26.8 (crypto/x509, crypto/tls,
# net/http and its HTTP/2) that govulncheck finds called by frontgate; the go
# command fetches it from the Go module proxy the first time (about 80 MB,
# 10 s). Override with `make GOTOOLCHAIN=...`.
export GOTOOLCHAIN := go1.27.3
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# The exact flags the Dockerfile builds with.
BUILDFLAGS = -trimpath -ldflags "-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)"
LINT       = $(GO) tool -modfile=test/tools/lint/go.mod
# Every fuzz target, as package:Target (`go test -fuzz` runs one target of one
# package at a time, so `make fuzz` loops over them).
FUZZ_TARGETS = \
	./proxy/:FuzzIdentityRoundTrip \
	./proxy/:FuzzSanitize \
	./auth/oidc/:FuzzAuthenticateToken \
	./auth/authnconfig/:FuzzLoad \
	./auth/authnconfig/:FuzzClaimMapping \
	./auth/clientcert/:FuzzLoadMapping \
	./cmd/frontgate/:FuzzConfigFile
# How long `make fuzz` runs each target (make fuzz FUZZTIME=5m for longer).
FUZZTIME  ?= 30s
# How long `make test` (CI) runs each target: 7 targets x 20 s = 140 s of
# fuzzing, plus about 1 min to build the instrumented test binaries on a
# fresh machine, which keeps CI within its time budget. Each target's seed
# corpus (f.Add and testdata/fuzz/<Target>/) also runs in the unit tests.
TEST_FUZZTIME ?= 20s
# How long `make soak` loads frontgate (issue 7 section 5), and the go test
# timeout around it (the load plus about 6 minutes of warm-up and settling).
SOAK         ?= 30m
SOAK_TIMEOUT ?= 60m
# How long `make test` (CI) soaks: 5 min of load plus about 4.5 min of
# warm-up and settling, run inside the end-to-end package; with a first tools
# build (10-20 min), the rest of the suite (about 5 min), govulncheck and
# fuzzing, CI stays well within an hour.
TEST_SOAK    ?= 5m

.PHONY: all build test lint unit tools demo fuzz vuln image clean go-version

all: build

## build: the static frontgate binary in bin/
build:
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o bin/frontgate ./cmd/frontgate

## test: everything CI runs — formatting, vet, staticcheck, unit and end-to-end tests (race detector on) with a TEST_SOAK (5 min) soak, govulncheck, a short fuzz run
test: lint tools
	FRONTGATE_TOOLS_DIR="$$(test/tools/install.sh print-dir)" FRONTGATE_SOAK=$(TEST_SOAK) $(GO) test -race -count=1 -timeout 45m ./...
	$(MAKE) vuln
	$(MAKE) fuzz FUZZTIME=$(TEST_FUZZTIME)

## lint: gofmt, go vet and staticcheck (pinned in test/tools/lint)
lint:
	@unformatted="$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(LINT) staticcheck ./...

## go-version: the Go toolchain the targets use
go-version:
	$(GO) version

## unit: the tests that need no real cluster
unit:
	$(GO) test -race -count=1 ./auth/... ./proxy/... ./cmd/...

## tools: build (first time, ~10-20 min) or reuse kube-apiserver, etcd, kubectl and the OpenID provider
tools:
	test/tools/install.sh

## demo: frontgate in front of a real local kube-apiserver with a real OpenID provider; Ctrl-C stops it all
demo: tools
	FRONTGATE_TOOLS_DIR="$$(test/tools/install.sh print-dir)" $(GO) run ./test/demo

## fuzz: each fuzz target (FUZZ_TARGETS) for FUZZTIME, default 30s (make fuzz FUZZTIME=5m for a longer run)
fuzz:
	@for f in $$(git grep --untracked -h -o -E '^func Fuzz[A-Za-z0-9_]+' -- '*_test.go' | cut -c6- | sort -u); do \
		case " $(FUZZ_TARGETS) " in *":$$f "*) ;; *) echo "$$f is not in FUZZ_TARGETS (Makefile)"; exit 1 ;; esac; \
	done
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo ">> fuzzing $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$${t#*:}\$$" -fuzztime=$(FUZZTIME) "$${t%%:*}"; \
	done

## vuln: govulncheck (pinned in test/tools/lint) against an offline vulnerability database built from the pinned golang.org/x/vulndb (test/tools/vulndb.sh); fails on called vulnerabilities not listed in test/tools/vulndb/accepted.txt
vuln:
	test/tools/vulndb.sh scan ./...

## soak: the soak test for SOAK (default 30m; make soak SOAK=2h SOAK_TIMEOUT=3h): gets, watches, exec sessions and port-forwards through frontgate against the real cluster; goroutines, open fds and heap must return to baseline, and every failure is reported with its reason
.PHONY: soak
soak: tools
	FRONTGATE_TOOLS_DIR="$$(test/tools/install.sh print-dir)" FRONTGATE_SOAK=$(SOAK) $(GO) test -count=1 -timeout $(SOAK_TIMEOUT) -run '^TestSoak$$' -v ./test/e2e/

## bench: Go benchmarks of the request path and of token verification, then the load runs of test/bench (results: BENCHMARKS.md); BENCHFLAGS go to the runner, e.g. BENCHFLAGS="-real -wait-quiet 20m"
.PHONY: bench
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./proxy/ ./auth/oidc/
	$(GO) run ./test/bench $(BENCHFLAGS)

## image: the container image (needs a Docker engine with buildx)
image:
	docker buildx build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t frontgate:$(VERSION) .

clean:
	rm -rf bin
