package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/api/facesearch"
	"github.com/facedhq/faced/api/findface"
	"github.com/facedhq/faced/api/miicloud"
	"github.com/facedhq/faced/api/trueface"
	"github.com/facedhq/faced/api/users"
	"github.com/facedhq/faced/daemon"
)

// shutdownTimeout bounds the drain of in-flight requests on SIGTERM.
const shutdownTimeout = 15 * time.Second

// bindServeFlags registers the flags of serve that mirror settings of the
// configuration file, bound to cfg's fields and defaulting to their values.
func bindServeFlags(fs *flag.FlagSet, cfg *daemon.Config) {
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "listen address, host:port (overrides listen of --config)")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "state directory (overrides data_dir of --config)")
	bindVisionFlags(fs, &cfg.Vision)
}

// serveConfig parses serve's flags into the daemon's configuration:
// DefaultConfig, then the --config file, then the flags given explicitly
// (fs.Visit: a flag left at its default does not undo the file).
func serveConfig(args []string, stderr io.Writer) (cfg daemon.Config, file string, err error) {
	fs := newFlagSet("serve", stderr)
	cfg = daemon.DefaultConfig()
	bindServeFlags(fs, &cfg)
	fs.StringVar(&file, "config", "", "YAML configuration file (README.md, The command); flags given explicitly override it")
	if err := fs.Parse(args); err != nil {
		return cfg, "", err
	}
	if fs.NArg() != 0 {
		return cfg, "", fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	if file == "" {
		return cfg, "", nil
	}
	fileCfg, err := daemon.LoadConfig(file)
	if err != nil {
		return cfg, "", err
	}
	// Replay the explicit flags onto the file's settings through a second
	// flag set bound to them: every flag's String() parses back to its value.
	over := flag.NewFlagSet("serve", flag.ContinueOnError)
	over.SetOutput(io.Discard)
	bindServeFlags(over, &fileCfg)
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "config" || err != nil {
			return
		}
		if e := over.Set(f.Name, f.Value.String()); e != nil {
			err = fmt.Errorf("serve: --%s: %w", f.Name, e)
		}
	})
	return fileCfg, file, err
}

// cmdServe runs the daemon: loads the models, provisions the configured
// API keys and serves HTTP(S) until the context ends, then drains
// in-flight requests.
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, file, err := serveConfig(args, stderr)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Load the certificate before the models: a bad path fails at once.
	var tlsConfig *tls.Config
	if cfg.TLS.Enabled() {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return fmt.Errorf("serve: tls: %w", err)
		}
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.SlogLevel()}))
	if file != "" {
		logger.Info("configuration", "file", file)
	}
	d, err := daemon.Open(ctx, cfg.DataDir, cfg.Vision, cfg.ServiceConfig(), logger)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := daemon.ProvisionKeys(ctx, d.Store, cfg.Keys, logger); err != nil {
		return err
	}
	srv := api.New(api.Config{
		Service: d.Service, Logger: logger, Version: version, Backend: cfg.Vision.Backend,
		MaxBody: cfg.API.MaxBodyBytes, RequestTimeout: cfg.API.RequestTimeout,
		MaxInFlight: cfg.API.MaxInFlight, MaxQueue: cfg.API.MaxQueue,
		Fetch: api.FetchConfig{AllowHosts: cfg.Fetch.AllowHosts, MaxBytes: cfg.Fetch.MaxBytes, Timeout: cfg.Fetch.Timeout},
	})
	// Inference latency per model goes to /metrics.
	d.Service.Pipeline().SetObserver(srv.ObserveInference)
	srv.Mount("/compat/users", users.New(d.Service, srv, logger))
	srv.Mount("/compat/facesearch", facesearch.New(d.Service, srv, logger))
	srv.Mount("/compat/trueface", trueface.New(d.Service, srv, logger))
	srv.Mount("/compat/miicloud", miicloud.New(d.Service, srv, logger))
	srv.Mount("/compat/findface", findface.New(d.Service, srv, logger))
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsConfig,
		// Connection-level errors (failed TLS handshakes of port scanners
		// and TCP probes among them) go to the daemon's log, not stderr.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelInfo)}
	logger.Info("serving", "addr", ln.Addr().String(), "tls", tlsConfig != nil, "backend", cfg.Vision.Backend,
		"embedder", d.Service.EmbedderID(), "faces", d.Service.IndexSize(), "data", cfg.DataDir)
	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- hs.ServeTLS(ln, "", "") // the certificate is in TLSConfig
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: drain: %w", err)
	}
	return nil
}
