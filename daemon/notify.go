package daemon

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// Notifier speaks systemd's sd_notify protocol: one datagram per state
// change to the socket systemd names in NOTIFY_SOCKET. A nil Notifier, or
// one without a socket (not started by systemd with Type=notify), does
// nothing. It is safe for concurrent use.
type Notifier struct {
	addr *net.UnixAddr
}

// NewNotifier reads NOTIFY_SOCKET through lookup (os.LookupEnv). A socket
// name starting with "@" is in the abstract namespace.
func NewNotifier(lookup func(string) (string, bool)) *Notifier {
	path, _ := lookup("NOTIFY_SOCKET")
	if path == "" {
		return &Notifier{}
	}
	return &Notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
}

// Enabled reports whether notifications go anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != nil }

// Notify sends the states ("READY=1", "STATUS=...") as one message.
func (n *Notifier) Notify(states ...string) error {
	if !n.Enabled() {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.Join(states, "\n"))); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// Ready tells systemd start-up (or a reload) is complete.
func (n *Notifier) Ready(status string) error { return n.Notify(sd.SdNotifyReady, Status(status)) }

// Reloading tells systemd a reload started (Type=notify-reload wants the
// monotonic time with it); Ready ends it.
func (n *Notifier) Reloading() error {
	return n.Notify(sd.SdNotifyReloading, strings.TrimSuffix(sd.SdNotifyMonotonicUsec(), "\n"))
}

// Stopping tells systemd shutdown started.
func (n *Notifier) Stopping(status string) error {
	return n.Notify(sd.SdNotifyStopping, Status(status))
}

// Watchdog keeps systemd's watchdog from firing, with a fresh status.
func (n *Notifier) Watchdog(status string) error {
	return n.Notify(sd.SdNotifyWatchdog, Status(status))
}

// Status is a STATUS= line: one line, whatever status holds.
func Status(status string) string {
	return "STATUS=" + strings.Join(strings.Fields(status), " ")
}

// WatchdogInterval is systemd's watchdog timeout (WATCHDOG_USEC, read
// through lookup) when it applies to the process pid (WATCHDOG_PID, if
// set, must be pid), else 0. Ping at half of it.
func WatchdogInterval(lookup func(string) (string, bool), pid int) (time.Duration, error) {
	usec, _ := lookup("WATCHDOG_USEC")
	if usec == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("WATCHDOG_USEC: want a positive number of microseconds, got " + strconv.Quote(usec))
	}
	if p, _ := lookup("WATCHDOG_PID"); p != "" {
		wp, err := strconv.Atoi(p)
		if err != nil {
			return 0, errors.New("WATCHDOG_PID: want a process id, got " + strconv.Quote(p))
		}
		if wp != pid {
			return 0, nil // meant for another process
		}
	}
	return time.Duration(n) * time.Microsecond, nil
}
