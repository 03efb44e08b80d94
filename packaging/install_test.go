package packaging

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// freshRoot is a bookworm minbase root (`make rootfs`, cached a day)
// unpacked for one test. Commands run in it through chroot inside a
// private mount namespace, so /proc and the apt cache mounted for them
// vanish with the command, even if the test dies.
type freshRoot struct {
	t        *testing.T
	dir      string
	aptCache string
}

func newFreshRoot(t *testing.T) *freshRoot {
	t.Helper()
	tarball := cachedPath(t, "FACED_ROOTFS_TAR", "rootfs")
	for _, tool := range []string{"unshare", "chroot", "tar"} {
		needTool(t, tool, "deps-pkg")
	}
	r := &freshRoot{t: t, dir: t.TempDir()}
	// Debian archives downloaded by earlier runs: the second run installs
	// the OpenCV dependencies without downloading them again.
	r.aptCache = filepath.Join(filepath.Dir(tarball), "apt-archives")
	if err := os.MkdirAll(filepath.Join(r.aptCache, "partial"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.root("tar", "-xf", tarball, "-C", r.dir)
	// t.TempDir's cleanup cannot remove files the chroot made as root
	// when the test is not root.
	t.Cleanup(func() { r.root("rm", "-rf", r.dir) })
	r.root("cp", "/etc/resolv.conf", filepath.Join(r.dir, "etc", "resolv.conf"))
	return r
}

// root runs a command on the host as root.
func (r *freshRoot) root(name string, args ...string) string {
	r.t.Helper()
	name, args = asRoot(name, args...)
	return run(r.t, os.Environ(), name, args...)
}

// script is the shell run inside the mount namespace before chroot.
const chrootScript = `set -e
root=$1 cache=$2 user=$3; shift 3
mount -t proc proc "$root/proc"
mount --bind "$cache" "$root/var/cache/apt/archives"
exec chroot --userspec="$user" "$root" "$@"`

// try runs argv in the root as user ("root" or "faced") and returns its
// outputs and error.
func (r *freshRoot) try(user string, argv ...string) (string, string, error) {
	r.t.Helper()
	args := append([]string{"--mount", "--propagation", "private", "sh", "-c", chrootScript, "sh", r.dir, r.aptCache, user + ":" + user}, argv...)
	name, args := asRoot("unshare", args...)
	env := append(cleanEnv(), "DEBIAN_FRONTEND=noninteractive", "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
	return tryRun(env, name, args...)
}

// in runs argv in the root as user, failing the test if it fails.
func (r *freshRoot) in(user string, argv ...string) string {
	r.t.Helper()
	out, errOut, err := r.try(user, argv...)
	if err != nil {
		r.t.Fatalf("in the fresh root, as %s: %s: %v\nstdout:\n%s\nstderr:\n%s", user, strings.Join(argv, " "), err, out, errOut)
	}
	return out
}

// exists reports whether a path inside the root exists (as root: the
// state directory is not readable by others).
func (r *freshRoot) exists(path string) bool {
	r.t.Helper()
	_, _, err := r.try("root", "test", "-e", path)
	return err == nil
}

// TestInstallRunRemovePurge installs the amd64 package into a fresh
// bookworm root with apt (which must pull in every library the binary
// needs from its Depends), runs the installed faced as its user with the
// installed configuration on a photo, then removes it (the store must
// stay) and purges it (the store must go).
func TestInstallRunRemovePurge(t *testing.T) {
	deb := builtDeb(t, "amd64")
	img := photo(t)
	r := newFreshRoot(t)
	r.root("cp", deb, filepath.Join(r.dir, "tmp", "faced.deb"))
	r.root("cp", img, filepath.Join(r.dir, "tmp", "photo.jpg"))
	r.root("chmod", "0644", filepath.Join(r.dir, "tmp", "photo.jpg"))

	if r.exists("/usr/lib/x86_64-linux-gnu/libopencv_core.so.406") {
		t.Fatal("the fresh root already has OpenCV: it would not show whether Depends is complete")
	}
	// unsafe-io: no fsync per file, this root is thrown away.
	r.in("root", "apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "Dpkg::Options::=--force-unsafe-io", "/tmp/faced.deb")

	// postinst: the user, its state directory, the enabled unit.
	if out := r.in("root", "stat", "-c", "%U:%G %a", "/var/lib/faced"); strings.TrimSpace(out) != "faced:faced 750" {
		t.Errorf("/var/lib/faced: %q, want faced:faced 750", out)
	}
	if out := r.in("root", "getent", "passwd", "faced"); !strings.Contains(out, ":/var/lib/faced:/usr/sbin/nologin") {
		t.Errorf("user faced: %q, want home /var/lib/faced and no login shell", out)
	}
	if !r.exists("/etc/systemd/system/multi-user.target.wants/faced.service") {
		t.Error("faced.service is not enabled after install")
	}
	if r.exists("/etc/systemd/system/sockets.target.wants/faced.socket") {
		t.Error("faced.socket is enabled: it is an alternative to the service's listener, opt-in")
	}

	// The installed binary, as the daemon's user, with the installed
	// configuration: the package's own runtimes, models and Depends.
	r.in("faced", "faced", "config", "check", "--config", "/etc/faced/faced.yaml")
	r.in("faced", "faced", "models", "verify")
	out := r.in("faced", "faced", "detect", "--config", "/etc/faced/faced.yaml", "/tmp/photo.jpg")
	var res struct {
		Faces []json.RawMessage `json:"faces"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Faces) != 1 {
		t.Fatalf("installed faced detect: %v, want one face:\n%s", err, out)
	}
	// Real data in the store: an API key.
	r.in("faced", "faced", "keys", "add", "--name", "install-test", "--scopes", "read", "--data-dir", "/var/lib/faced")
	if !r.exists("/var/lib/faced/faced.db") {
		t.Fatal("keys add made no /var/lib/faced/faced.db")
	}

	r.in("root", "apt-get", "remove", "-y", "-q", "faced")
	if r.exists("/usr/bin/faced") {
		t.Error("/usr/bin/faced is still there after remove")
	}
	for _, kept := range []string{"/var/lib/faced/faced.db", "/etc/faced/faced.yaml"} {
		if !r.exists(kept) {
			t.Errorf("remove deleted %s: only purge may", kept)
		}
	}

	r.in("root", "apt-get", "purge", "-y", "-q", "faced")
	for _, gone := range []string{"/var/lib/faced", "/etc/faced"} {
		if r.exists(gone) {
			t.Errorf("%s is still there after purge", gone)
		}
	}
}
