# Proximity build, test and run targets. `make help` lists them.

GO          ?= go
# The Go release the module is built and tested with (go.mod's toolchain
# line); the go command fetches it from the module proxy once.
export GOTOOLCHAIN ?= go1.26.11
BIN         := bin
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Code generators, pinned; protoc itself is Debian's protobuf-compiler.
TOOLS       := $(CURDIR)/.tools/bin
PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
# The version of every binary (--version) and of the Debian packages: one
# source. make build stamps the commit beside it; the packages do not (their
# --version is "NAME version X", which the package test checks).
VERSION     ?= 0.4.0
COMMIT      ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS     := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Debian packages: the version, and the commit time as the timestamp of
# every file (reproducible builds).
PKG_VERSION ?= $(VERSION)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 1767225600)
DIST        := dist
# Where make deb puts the .deb files (the build itself is staged in dist/).
PKG_OUT     ?= $(DIST)
PKGS        := ./...
# Race detection on the packages whose concurrency is their point.
RACE_PKGS   := ./coordinator/...

.PHONY: all build web web-deps test test-unit test-race test-web nemesis fuzz ui-audit lint generate check-generated vulncheck run bench bench-registry bench-agents deb package-test help clean

all: build

help: ## list the targets
	@awk -F':.*## ' '/^[a-z-]+:.*## / {printf "%-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: web ## build the web dashboard, then proximity-coordinator (with it embedded), proximity-agent, proximityctl, proximity-dev and the pvesim simulator into bin/
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./coordinator/cmd/proximity-coordinator ./coordinator/cmd/proximityctl ./agent/cmd/proximity-agent ./coordinator/cmd/proximity-dev ./internal/pvesim/cmd/pvesim

test: lint build test-race test-web ## lint, build, and run every test (Go with the race detector; the dashboard's unit and browser tests)

# The web dashboard (web/): Node.js 20.19 or later and npm; the packages are
# the ones package-lock.json pins, installed again when it changes. No
# browser is downloaded: the browser tests use Debian's chromium.
WEB_DEPS := web/node_modules/.package-lock.json
$(WEB_DEPS): web/package-lock.json
	cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	@touch $@

web-deps: $(WEB_DEPS)

web: $(WEB_DEPS) ## build the web dashboard into coordinator/webui/dist (embedded by the next go build)
	cd web && npm run build

# Vitest for the components and stores, then Playwright in Debian's
# Chromium against `proximity-dev` (CHROMIUM=/usr/bin/chromium).
test-web: build
	cd web && npm test
	cd web && npm run e2e

ui-audit: build ## Lighthouse scores of the catalog and an app page (performance, accessibility, best practices)
	cd web && npm run audit:ui

test-unit: ## run the tests without the race detector (faster)
	$(GO) test -count=1 -parallel $(TEST_PARALLEL) -timeout 10m $(PKGS)

# Tests that start whole clusters mostly wait (elections, heartbeats, the
# controller's steps) and run side by side, TEST_PARALLEL at a time per
# package.
TEST_PARALLEL ?= 4

test-race:
	$(GO) test -race -count=1 -parallel $(TEST_PARALLEL) -timeout 20m $(PKGS)

# The nemesis (tests/nemesis, docs/reliability.md): three coordinator
# processes in network namespaces and five agents on simulated nodes under
# faults drawn from SEED for DURATION, then healed and checked. Needs root,
# ip and nft. SEED empty: a random one, printed.
SEED     ?=
DURATION ?= 90s
NEMESIS_TIMEOUT ?= 60m
nemesis: build ## run the system under faults from SEED for DURATION (make nemesis SEED=1 DURATION=90s; root, ip, nft); artifacts are kept on failure
	$(GO) build -tags simulate -o $(TOOLS)/proximity-agent-simulate ./agent/cmd/proximity-agent
	NEMESIS_SEED=$(SEED) NEMESIS_DURATION=$(DURATION) NEMESIS_COORDINATOR=$(CURDIR)/$(BIN)/proximity-coordinator \
	  NEMESIS_AGENT=$(TOOLS)/proximity-agent-simulate \
	  $(GO) test -count=1 -v -run '^TestNemesis$$' -timeout $(NEMESIS_TIMEOUT) ./tests/nemesis

# Every fuzz target (go test -fuzz), one after another, FUZZTIME each.
FUZZTIME ?= 20s
fuzz: ## run every Go fuzz target for FUZZTIME each (FUZZTIME=20s); a failing input lands in the package's testdata/fuzz
	GO=$(GO) FUZZTIME=$(FUZZTIME) tools/fuzz.sh

lint: ## gofmt, go vet, staticcheck, package docs
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)
	@missing=$$($(GO) list -f '{{if not .Doc}}{{.ImportPath}}{{end}}' $(PKGS)); \
	  if [ -n "$$missing" ]; then echo "packages without a package comment:"; echo "$$missing"; exit 1; fi
	$(MAKE) --no-print-directory $(WEB_DEPS)
	cd web && npm run check

generate: ## regenerate committed generated code (protobuf; needs protoc)
	GOBIN=$(TOOLS) $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(TOOLS) $(GO) install $(PROTOC_GEN_GO_GRPC)
	PATH="$(TOOLS):$$PATH" $(GO) generate $(PKGS)

check-generated: generate ## fail if the committed generated code is stale
	@git diff --exit-code -- proto/ || { echo "generated code is stale: run make generate and commit"; exit 1; }

vulncheck: ## fail on any known vulnerability the code reaches (govulncheck and golang.org/x/vulndb, pinned in tools/vuln)
	GO=$(GO) tools/vuln/vulncheck.sh

run: build ## run Proximity's development default: proximity-dev (one coordinator with the dashboard, three simulated Proxmox nodes)
	$(BIN)/proximity-dev

deb: web ## build proximity-agent and proximity-coordinator .deb files into dist/ (PKG_VERSION=0.4.0)
	@mkdir -p $(DIST)/man $(PKG_OUT)
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags '-s -w -buildid= -X main.version=$(PKG_VERSION)' \
	  -o $(DIST)/ ./coordinator/cmd/proximity-coordinator ./coordinator/cmd/proximityctl ./agent/cmd/proximity-agent
	for m in packaging/deb/man/*; do gzip -9n -c $$m > $(DIST)/man/$$(basename $$m).gz; done
	touch -d @$(SOURCE_DATE_EPOCH) $(DIST)/man/*.gz
	sed 's/$${PKG_VERSION}/$(PKG_VERSION)/' packaging/deb/changelog.yaml > $(DIST)/changelog.yaml
	$(GO) -C tools build -o $(TOOLS)/nfpm github.com/goreleaser/nfpm/v2/cmd/nfpm
	for p in agent coordinator; do \
	  PKG_VERSION=$(PKG_VERSION) SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(TOOLS)/nfpm package \
	    -f packaging/deb/nfpm-$$p.yaml -p deb -t $(PKG_OUT)/ || exit 1; \
	done
	@ls -l $(PKG_OUT)/*.deb

package-test: ## lintian (Debian 12 and 13), systemd-analyze, install/upgrade/purge in debootstrap roots (root, network)
	packaging/deb/test/package-test.sh

bench: ## micro-benchmarks (state machine, proposer)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

bench-registry: build ## registry throughput: 3 coordinators against 3 etcd members (needs etcd-server)
	cd bench/registry && $(GO) run . -coordinator ../../$(BIN)/proximity-coordinator

AGENTS ?= 25,50,100
bench-agents: build ## agent scale test: one coordinator and AGENTS simulated agent processes (AGENTS=25,50,100)
	$(GO) build -tags simulate -o $(TOOLS)/proximity-agent-simulate ./agent/cmd/proximity-agent
	$(GO) run ./bench/agents -coordinator $(BIN)/proximity-coordinator -agent $(TOOLS)/proximity-agent-simulate -agents $(AGENTS)

clean: ## remove build output
	rm -rf $(BIN) .tools $(DIST) web/test-results
	cd web && node scripts/clean.mjs
