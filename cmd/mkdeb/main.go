// Command mkdeb builds faced's Debian packages with nfpm used as a library
// (`make deb`):
//
//	mkdeb -version V -deps .deps -out bin/pkg amd64=bin/pkg/amd64/faced arm64=bin/pkg/arm64/faced
//
// Each package holds the binary, its architecture's runtime libraries and
// every model (checked against models/manifest.json), the systemd units,
// the default configuration and the maintainer scripts. Depends lists the
// Debian packages owning the libraries the binary and the runtimes link,
// found with the build machine's dpkg (see packaging.LinkedLibraries for
// why that also holds for arm64).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/facedhq/faced/packaging"
)

// triplets are the multiarch library directories of the build machine.
var triplets = map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}

func main() {
	version := flag.String("version", "", "Debian version of the packages, e.g. 0.1.0~git20250101.abcdef0")
	deps := flag.String("deps", ".deps", "folder of the fetched runtimes and models (make deps)")
	src := flag.String("src", ".", "the checkout: systemd/, packaging/, README.md")
	out := flag.String("out", "bin/pkg", "folder to write the .deb files into")
	mtime := flag.Int64("mtime", 0, "Unix time of every file in the packages (0: $SOURCE_DATE_EPOCH, else now)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: mkdeb -version V [flags] ARCH=BINARY...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(*version, *deps, *src, *out, *mtime, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
}

func run(version, deps, src, out string, mtime int64, targets []string) error {
	if version == "" || len(targets) == 0 {
		flag.Usage()
		return fmt.Errorf("need -version and at least one ARCH=BINARY")
	}
	t := time.Now()
	if mtime != 0 {
		t = time.Unix(mtime, 0)
	} else if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		t = time.Unix(sec, 0)
	}
	triplet, ok := triplets[runtime.GOARCH]
	if !ok {
		return fmt.Errorf("build machine architecture %s: want amd64 or arm64", runtime.GOARCH)
	}
	resolver := packaging.HostResolver(triplet)

	for _, target := range targets {
		arch, binary, ok := strings.Cut(target, "=")
		if !ok {
			return fmt.Errorf("%q: want ARCH=BINARY", target)
		}
		sonames, err := packaging.LinkedLibraries(binary, filepath.Join(deps, "lib", arch))
		if err != nil {
			return err
		}
		depends, err := resolver.Depends(sonames, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", arch, err)
		}
		deb, err := packaging.Build(packaging.Spec{
			Arch: arch, Version: version, Binary: binary, DepsDir: deps, SrcDir: src,
			Depends: depends, MTime: t,
		}, out)
		if err != nil {
			return err
		}
		fmt.Printf("%s\n  Depends: %s\n", deb, strings.Join(append(depends, packaging.ExtraDepends...), ", "))
	}
	return nil
}
