package daemon

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listenNotify is a stand-in for systemd's notification socket.
func listenNotify(t *testing.T, name string) (*net.UnixConn, func(string) (string, bool)) {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, func(k string) (string, bool) {
		if k == "NOTIFY_SOCKET" {
			return name, true
		}
		return "", false
	}
}

func readNotify(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotifier(t *testing.T) {
	for _, name := range []string{filepath.Join(t.TempDir(), "notify.sock"), "@faced-test-" + t.Name() + time.Now().Format("150405.000000")} {
		conn, lookup := listenNotify(t, name)
		n := NewNotifier(lookup)
		if !n.Enabled() {
			t.Fatal("not enabled with NOTIFY_SOCKET set")
		}
		for _, tc := range []struct {
			send func() error
			want string
		}{
			{func() error { return n.Ready("serving on x:\n 3 faces") }, "READY=1\nSTATUS=serving on x: 3 faces"},
			{func() error { return n.Watchdog("ok") }, "WATCHDOG=1\nSTATUS=ok"},
			{func() error { return n.Stopping("draining") }, "STOPPING=1\nSTATUS=draining"},
		} {
			if err := tc.send(); err != nil {
				t.Fatal(err)
			}
			if got := readNotify(t, conn); got != tc.want {
				t.Errorf("%s: got %q, want %q", name, got, tc.want)
			}
		}
		if err := n.Reloading(); err != nil {
			t.Fatal(err)
		}
		if got := readNotify(t, conn); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
			t.Errorf("reloading: %q", got)
		}
	}

	// Without NOTIFY_SOCKET (not under systemd) nothing is sent, no error.
	n := NewNotifier(func(string) (string, bool) { return "", false })
	if n.Enabled() || n.Ready("x") != nil {
		t.Error("notifier without a socket")
	}
	var nilN *Notifier
	if nilN.Notify("READY=1") != nil {
		t.Error("nil notifier")
	}
	// A socket nobody listens on is an error (logged by serve).
	gone := NewNotifier(func(string) (string, bool) { return filepath.Join(t.TempDir(), "none.sock"), true })
	if gone.Ready("x") == nil {
		t.Error("no error for a missing socket")
	}
}

func TestWatchdogInterval(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1], true
				}
			}
			return "", false
		}
	}
	for _, tc := range []struct {
		lookup  func(string) (string, bool)
		want    time.Duration
		wantErr bool
	}{
		{env(), 0, false},
		{env("WATCHDOG_USEC", "30000000"), 30 * time.Second, false},
		{env("WATCHDOG_USEC", "200000", "WATCHDOG_PID", "42"), 200 * time.Millisecond, false},
		{env("WATCHDOG_USEC", "200000", "WATCHDOG_PID", "43"), 0, false}, // another process's
		{env("WATCHDOG_USEC", "soon"), 0, true},
		{env("WATCHDOG_USEC", "0"), 0, true},
		{env("WATCHDOG_USEC", "1000", "WATCHDOG_PID", "me"), 0, true},
	} {
		got, err := WatchdogInterval(tc.lookup, 42)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("got %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
		}
	}
}
