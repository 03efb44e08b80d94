package daemon

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/coreos/go-systemd/v22/activation"
)

// ActivationListeners returns the listening sockets systemd passed the
// process (socket activation, faced.socket: LISTEN_FDS from fd 3 on, when
// LISTEN_PID is this process), or none. They replace the listen setting.
// It clears LISTEN_* from the environment, so it finds them only once.
func ActivationListeners() ([]net.Listener, error) {
	ls, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	var errs []error
	for i, l := range ls {
		if l == nil {
			errs = append(errs, fmt.Errorf("socket activation: fd %d is not a listening stream socket (ListenStream= in faced.socket)", 3+i))
		}
	}
	if len(errs) > 0 {
		for _, l := range ls {
			if l != nil {
				l.Close()
			}
		}
		return nil, errors.Join(errs...)
	}
	return ls, nil
}

// ConnLimit caps the client connections open at once across the
// listeners it wraps: Accept waits while the cap is reached, leaving newer
// clients in the kernel's listen backlog until a connection closes, so a
// flood of connections (idle, or stalled mid-request until the server's
// deadlines close them) cannot exhaust file descriptors or memory.
type ConnLimit struct {
	sem chan struct{}
}

// NewConnLimit allows n connections at once.
func NewConnLimit(n int) *ConnLimit { return &ConnLimit{sem: make(chan struct{}, n)} }

// Open is the number of connections open.
func (c *ConnLimit) Open() int { return len(c.sem) }

// Listener wraps ln: its connections count against the cap.
func (c *ConnLimit) Listener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, limit: c, done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	limit     *ConnLimit
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.limit.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.limit.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.limit.sem }}, nil
}

// Close stops Accept, also one waiting for a place.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite keeps the half-close net/http uses to deliver an error
// response before closing (a plain wrapper would hide it).
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
