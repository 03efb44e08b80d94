# faced: the only set-up a fresh Debian bookworm machine needs is `make test`
# (or `make run`). Every target that needs runtimes or models depends on deps.

GO        ?= go
DEPS_DIR  ?= $(CURDIR)/.deps
BIN       := bin/faced
# Debian packages: OpenCV 4.6 for gocv, Mosquitto for the MQTT tests and
# `make run`, pkg-config for cgo.
APT_PACKAGES := libopencv-dev mosquitto pkg-config gcc g++

# Tests and the binary find runtimes and models here (see models.FindDir).
export FACED_DEPS_DIR := $(DEPS_DIR)
export CGO_ENABLED := 1

.PHONY: all deps deps-apt deps-npm build test run eval bench fmt vet clean

all: build

deps: deps-apt deps-npm

# Installs only what is missing, so re-running is a no-op. sudo only when
# not root.
deps-apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  echo "deps: installing$$missing"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Runtimes and models from npm, pinned by sha256 in models/manifest.json and
# cached per user in ~/.cache/faced.
deps-npm:
	@$(GO) run ./cmd/fetchdeps -dest $(DEPS_DIR)

build: deps
	$(GO) build -trimpath -o $(BIN) ./cmd/faced

vet: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

test: deps vet
	$(GO) test -race -count=1 -timeout 20m ./...

run: build
	$(BIN) serve --data-dir ./data --listen 127.0.0.1:8080

# Long evaluations and benchmarks: not part of `make test`.
EVAL_DATA ?= ../shared/data
eval: build
	$(BIN) eval verify --pairs $(EVAL_DATA)/deepface/master.csv --images $(EVAL_DATA)/deepface
	$(BIN) eval liveness --images $(EVAL_DATA)/antispoof

bench: build
	$(BIN) bench pipeline --images $(EVAL_DATA)/deepface
	$(BIN) bench index --size 100000
	$(BIN) bench index --size 1000000
	$(GO) test -run '^$$' -bench . -benchtime 50x ./face/
	$(GO) test -run '^$$' -bench 'Startup100k' -benchtime 3x ./service/

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
