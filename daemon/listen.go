package daemon

import (
	"errors"
	"fmt"
	"net"

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
