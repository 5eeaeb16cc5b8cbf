# modgate — make targets. Everything the project needs is installed from here.

GO        ?= go
BIN       := bin/modgate
VERSION   := $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -X main.Version=$(VERSION)
CONFIG    ?=
DATA      ?= data
FUZZTIME  ?= 20s

.PHONY: all build run test test-race test-short stress bench bench-go bench-throughput bench-reverify fuzz lint tools clean

all: build

## build: compile bin/modgate
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/modgate

DEV       := .dev

## run: start modgate on embedded defaults: generated development keys and a sample
## configuration in .dev/ (data in ./data, HTTP on 127.0.0.1:8080, NATS on 127.0.0.1:4222);
## set CONFIG=path/to/modgate.yaml to use your own configuration instead.
run: build $(if $(CONFIG),,$(DEV)/modgate.yaml)
	./$(BIN) serve --config $(if $(CONFIG),$(CONFIG),$(DEV)/modgate.yaml)

# Development keys and configuration, made once. Not for production: the
# cosign password sits in a file next to the key.
$(DEV)/modgate.yaml:
	mkdir -p $(DEV) && chmod 700 $(DEV)
	./$(BIN) keys generate --name sum.modgate.localhost --out $(DEV)/sumdb.key
	umask 077 && head -c 24 /dev/urandom | base64 > $(DEV)/cosign.password
	./$(BIN) keys generate --cosign-out $(DEV)/cosign.key --password-file $(DEV)/cosign.password
	umask 077 && head -c 24 /dev/urandom | base64 > $(DEV)/github.secret
	sed 's|@DATA@|$(CURDIR)/$(DATA)|' examples/dev.yaml > $@
	@echo "development configuration in $@: add repositories and signers there"

## test: every test, including the real git/gpg/ssh-keygen/go end-to-end scripts
test:
	$(GO) test -count=1 ./...

## test-race: every test again under the race detector (about 5 minutes; CI runs it after test)
test-race:
	$(GO) test -race -count=1 ./...

## test-short: unit tests only
test-short:
	$(GO) test -count=1 -short ./...

## stress: kill -9 crash test of modgate serve under webhook load (about 2 minutes; MODGATE_STRESS_RUNS, MODGATE_STRESS_SEED)
stress:
	MODGATE_STRESS=1 $(GO) test -count=1 -run 'TestServe(Crash|Load)' -v ./cmd/modgate

## bench: Go benchmarks of the hot paths, then the whole-pipeline throughput benchmark
## (one after the other, even under make -j: the throughput benchmark needs the machine)
bench:
	$(MAKE) bench-go
	$(MAKE) bench-throughput
	$(MAKE) bench-reverify

bench-go:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

## bench-throughput: a corpus of real module versions through modgate serve (1 and 2 worker
## processes) and through the shell chain (git verify-tag, go mod verify, syft, cosign sign-blob);
## a few minutes. BENCHFLAGS passes flags: e.g. BENCHFLAGS='-n 60 -json'
BENCHFLAGS ?=
bench-throughput: build
	$(GO) run ./cmd/modgate-bench -modgate $(BIN) $(BENCHFLAGS)

## bench-reverify: 5,000 synthetic admitted versions re-verified five times against raw SHA-256
## of the same zips and of every file it hashes, and admission latency with and without a run beside it (about 2 minutes;
## MODGATE_REVERIFY_N versions of MODGATE_REVERIFY_SIZE bytes)
bench-reverify:
	MODGATE_BENCH_REVERIFY=1 $(GO) test -count=1 -timeout 60m -run TestReverifyThroughput -v ./reverify

## fuzz: run each fuzz target for FUZZTIME
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list='^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; \
	done

## lint: gofmt and go vet must be clean
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@# The code builds and vets where developers run it too, not only on linux.
	GOOS=darwin $(GO) vet ./...
	GOOS=windows $(GO) vet ./...

clean:
	rm -rf bin
