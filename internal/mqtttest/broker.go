// Package mqtttest runs a real Mosquitto broker (the Debian package, which
// `make deps` installs) on a free loopback port for tests, and a backend
// client that records what devices publish.
package mqtttest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/facedhq/faced/internal/testenv"
)

// Options shape the broker.
type Options struct {
	// Users maps user names to passwords; when set, anonymous clients are
	// refused.
	Users map[string]string
	// TLS serves MQTT over TLS with these PEM files instead of plain TCP;
	// RequireCert asks clients for a certificate signed by CAFile.
	CertFile, KeyFile, CAFile string
	RequireCert               bool
}

// Broker is a running mosquitto. Its sessions and queued messages persist
// across Stop/Start, like a production broker's.
type Broker struct {
	t    testing.TB
	dir  string
	port int
	tls  bool
	bin  string
	cmd  *exec.Cmd
	log  *testenv.Buffer
}

// Start runs a broker for the test; it is stopped at cleanup.
func Start(t testing.TB, opts Options) *Broker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto" // Debian's path, outside a user's PATH
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("mosquitto is not installed (make deps installs it): %v", err)
		}
	}
	b := &Broker{t: t, bin: bin, dir: t.TempDir(), port: freePort(t), tls: opts.CertFile != ""}
	conf := fmt.Sprintf("listener %d 127.0.0.1\npersistence true\npersistence_location %s/\nautosave_interval 1\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nmax_queued_messages 10000\n", b.port, b.dir)
	if os.Geteuid() == 0 {
		// Started as root, mosquitto drops to the "mosquitto" user, which
		// cannot read the test's private temporary directory.
		conf += "user root\n"
	}
	if len(opts.Users) > 0 {
		pw := filepath.Join(b.dir, "passwd")
		if err := os.WriteFile(pw, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		for u, p := range opts.Users {
			if out, err := exec.Command("mosquitto_passwd", "-b", pw, u, p).CombinedOutput(); err != nil {
				t.Fatalf("mosquitto_passwd: %v: %s", err, out)
			}
		}
		conf += "allow_anonymous false\npassword_file " + pw + "\n"
	} else {
		conf += "allow_anonymous true\n"
	}
	if b.tls {
		conf += fmt.Sprintf("certfile %s\nkeyfile %s\n", opts.CertFile, opts.KeyFile)
		if opts.CAFile != "" {
			conf += "cafile " + opts.CAFile + "\n"
		}
		if opts.RequireCert {
			conf += "require_certificate true\n"
		}
	}
	if err := os.WriteFile(filepath.Join(b.dir, "mosquitto.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b.Start()
	t.Cleanup(b.Stop)
	return b
}

// URL is the broker's address for clients.
func (b *Broker) URL() string {
	scheme := "tcp"
	if b.tls {
		scheme = "ssl"
	}
	return scheme + "://127.0.0.1:" + strconv.Itoa(b.port)
}

// Start (re)starts a stopped broker on the same port, and waits until it
// accepts connections.
func (b *Broker) Start() {
	b.t.Helper()
	b.log = &testenv.Buffer{}
	cmd := exec.Command(b.bin, "-c", filepath.Join(b.dir, "mosquitto.conf"))
	cmd.Stdout, cmd.Stderr = b.log, b.log
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start mosquitto: %v", err)
	}
	b.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(b.port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mosquitto did not start on port %d: %v\n%s", b.port, err, b.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the broker (it saves its sessions, as on a clean restart).
func (b *Broker) Stop() {
	if b.cmd == nil || b.cmd.Process == nil || b.cmd.ProcessState != nil {
		return
	}
	b.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-done
	}
}

// Log is what the broker printed since its last start.
func (b *Broker) Log() string { return b.log.String() }

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
