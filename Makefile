# gdexport — see README.md. Everything here needs only Go, make, git, python3
# and (for `make test`'s container tests) the Docker engine.
GO        ?= go
BIN       := bin/gdexport
PKGS      := ./...
FUZZTIME  ?= 30s
export TESTCONTAINERS_RYUK_DISABLED := true
export TESTCONTAINERS_HOST_OVERRIDE := 127.0.0.1

.PHONY: build run test test-unit lint fuzz bench clean chromium image images

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/gdexport

run: build
	./deployments/local/run.sh

# All tests: unit, end-to-end on embedded NATS, multi-process, fuzz seed
# corpora, and the integration suite (build tag integration). The container
# tests of testing/cluster write one result line each to $(RESULTS), shown
# at the end as the suite's table (go test shows nothing of a passing
# package).
RESULTS := $(CURDIR)/bin/test-results.txt
test: build chromium
	@rm -f $(RESULTS)
	@GDEXPORT_TEST_RESULTS=$(RESULTS) $(GO) test -count=1 -timeout 45m -tags integration $(PKGS); rc=$$?; \
	  if [ -s $(RESULTS) ]; then echo "container tests (testing/cluster):"; cat $(RESULTS); fi; exit $$rc

# The status page is tested in headless Chromium, from Debian's package.
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

test-unit:
	$(GO) test -count=1 $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags integration $(PKGS)

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# The hot paths' Go benchmarks, then the end-to-end measurements against
# this machine's own limits (nats-server and workers as processes, MinIO and
# local-kms in containers for the S3 calls); one table is printed and
# written to testing/bench/results/<date>.json (a narrowed run: partial-…). 20–30 minutes.
# BENCH_FLAGS narrows it, e.g. BENCH_FLAGS="-scenarios throughput -modes fast".
BENCH_FLAGS ?=
bench:
	$(GO) run ./testing/bench/cmd/gdexport-bench $(BENCH_FLAGS)

# gdexport's image, gdexport/gdexport:local, FROM scratch (deployments/Dockerfile);
# no registry needed. `images` also builds the NATS, MinIO and local-kms images
# of deployments/docker-compose.yml. Each is rebuilt only when its inputs change.
image:
	$(GO) run ./testing/containers/cmd/gdexport-images gdexport

images:
	$(GO) run ./testing/containers/cmd/gdexport-images

clean:
	rm -rf bin data
