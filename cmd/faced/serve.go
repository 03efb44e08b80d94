package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/service"
)

// cmdServe runs the daemon: loads the models and serves HTTP until the
// context ends, then drains in-flight requests.
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	cfg := visionFlags(fs)
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP listen address")
	dataDir := fs.String("data-dir", "./data", "state directory")
	configFile := fs.String("config", "", "configuration file (not supported yet)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *configFile != "" {
		return errors.New("serve: --config is not supported yet; use flags")
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	d, err := daemon.Open(ctx, *dataDir, *cfg, service.Config{}, logger)
	if err != nil {
		return err
	}
	defer d.Close()
	srv := api.New(api.Config{Service: d.Service, Logger: logger, Version: version, Backend: cfg.Backend})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	logger.Info("serving", "addr", ln.Addr().String(), "backend", cfg.Backend, "embedder", d.Service.EmbedderID(),
		"faces", d.Service.IndexSize(), "data", *dataDir)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return hs.Shutdown(shutdown)
}
