package daemon

import (
	"net"
	"testing"
	"time"
)

// TestConnLimit: at most n connections are accepted at once; one more is
// accepted when one closes; Close ends an Accept waiting for a place.
func TestConnLimit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limit := NewConnLimit(2)
	l := limit.Listener(ln)
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		defer close(accepted)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	next := func() net.Conn {
		t.Helper()
		select {
		case c, ok := <-accepted:
			if !ok {
				t.Fatal("Accept ended")
			}
			return c
		case <-time.After(20 * time.Second):
			t.Fatal("no connection accepted")
		}
		return nil
	}
	for range 4 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, second := next(), next()
	if n := limit.Open(); n != 2 {
		t.Errorf("Open() = %d, want 2", n)
	}
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted while 2 were open")
	case <-time.After(500 * time.Millisecond):
	}
	first.Close()
	first.Close() // a second Close frees nothing more
	third := next()
	defer third.Close()
	defer second.Close()
	if n := limit.Open(); n != 2 {
		t.Errorf("Open() = %d after a close and an accept, want 2", n)
	}
	// The fourth waits for a place; Close ends the wait.
	l.Close()
	select {
	case c, ok := <-accepted:
		if ok {
			c.Close()
			t.Fatal("a connection was accepted over the limit")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not end the waiting Accept")
	}
}
