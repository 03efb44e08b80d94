package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/facedhq/faced/store"
)

// ControlSocketPath is the daemon's local control socket inside a data
// directory. It is created mode 0600: whoever may read the store file may
// use it, and nobody else, so it needs no API key.
func ControlSocketPath(dataDir string) string { return filepath.Join(dataDir, "faced.sock") }

// maxSunPath is the room for a path in sockaddr_un on Linux (108 bytes
// with the terminating NUL).
const maxSunPath = 107

// socketAddr is the address to bind or connect for the socket at path,
// and a cleanup to call once the bind or connect is done (or, for a
// listener, once it is closed). A path longer than sun_path allows (a data
// directory over ~96 bytes) is reached through the directory's descriptor,
// /proc/self/fd/N/faced.sock: the kernel resolves the path in the
// directory itself, so the socket still lives at ControlSocketPath, where
// the other side finds it the same way. No second location, no symlink,
// nothing to clean up when the daemon is killed.
func socketAddr(path string) (string, func(), error) {
	if len(path) <= maxSunPath {
		return path, func() {}, nil
	}
	dir, err := os.OpenFile(filepath.Dir(path), os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("control: open the socket's directory: %w", err)
	}
	short := fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path))
	if len(short) > maxSunPath {
		dir.Close()
		return "", nil, fmt.Errorf("control: socket name %q is too long", filepath.Base(path))
	}
	return short, func() { dir.Close() }, nil
}

// ControlServer answers local maintenance requests while the daemon runs
// (bbolt holds the file lock, so another process cannot open the store):
// GET /backup streams a consistent snapshot of the store; GET /keys,
// POST /keys and POST /keys/{id}/revoke are `faced keys list|add|revoke`.
// The API authenticates every request against the store, so a key
// revoked here is refused from the next request on, without a restart.
type ControlServer struct {
	srv  *http.Server
	ln   net.Listener
	path string
}

// StartControl listens on the data directory's control socket.
func StartControl(dataDir string, db *store.DB, logger *slog.Logger) (*ControlServer, error) {
	path := ControlSocketPath(dataDir)
	// A socket left by a killed daemon blocks Listen; we hold the store's
	// lock, so no live daemon owns it.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control: remove stale socket: %w", err)
	}
	addr, release, err := socketAddr(path)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", addr)
	// Bound: the socket is a file in the directory, named by path from now
	// on; the directory's descriptor (long paths) is no longer needed.
	release()
	if err != nil {
		return nil, fmt.Errorf("control: listen on %s: %w", path, err)
	}
	// Close must not unlink by addr, which may have been a /proc path;
	// Close removes path itself.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if _, err := db.Backup(r.Context(), w); err != nil {
			// Headers are gone; the client sees a short body and fails.
			logger.Error("backup over control socket failed", "err", err)
		}
	})
	registerKeyRoutes(mux, db, logger)
	c := &ControlServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln, path: path}
	go c.srv.Serve(ln)
	return c, nil
}

// Close stops the control server and removes its socket.
func (c *ControlServer) Close() error {
	err := c.srv.Close()
	os.Remove(c.path)
	return err
}

// controlClient speaks HTTP to the control socket of dataDir.
func controlClient(dataDir string) *http.Client {
	path := ControlSocketPath(dataDir)
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			addr, release, err := socketAddr(path)
			if err != nil {
				return nil, err
			}
			defer release()
			var d net.Dialer
			return d.DialContext(ctx, "unix", addr)
		},
	}}
}

// BackupFromDaemon streams a snapshot from the daemon running on dataDir.
func BackupFromDaemon(ctx context.Context, dataDir string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://faced/backup", nil)
	if err != nil {
		return 0, err
	}
	resp, err := controlClient(dataDir).Do(req)
	if err != nil {
		return 0, fmt.Errorf("control: ask the daemon for a backup: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("control: daemon answered %s", resp.Status)
	}
	return io.Copy(w, resp.Body)
}
