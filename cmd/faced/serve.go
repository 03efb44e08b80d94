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
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/api/facesearch"
	"github.com/facedhq/faced/api/findface"
	"github.com/facedhq/faced/api/miicloud"
	"github.com/facedhq/faced/api/trueface"
	"github.com/facedhq/faced/api/users"
	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/webui"
	"github.com/prometheus/client_golang/prometheus"
)

// shutdownTimeout bounds the drain of in-flight requests on SIGTERM
// (README: "up to 15 s"); tests pass a shorter one to serve.
const shutdownTimeout = 15 * time.Second

// readHeaderTimeout bounds a request's headers: a client that opens a
// connection and trickles its headers is dropped after it.
const readHeaderTimeout = 10 * time.Second

// httpServer is the http.Server of the API, as configured: headers within
// readHeaderTimeout, each body within api.request_timeout (a per-request
// read deadline api.Server sets, so every front serving it, tests and
// bench included, has it; no server-wide ReadTimeout), idle keep-alive
// connections closed after api.idle_timeout, and a response written
// within the longest a handler may run (request_timeout, or the dialects'
// 30 s) plus 30 s, so a client that never reads its response does not
// hold the connection for ever.
func httpServer(cfg daemon.APIConfig, h http.Handler, tlsConfig *tls.Config, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		WriteTimeout:      max(cfg.RequestTimeout, 30*time.Second) + 30*time.Second,
		// Connection-level errors (failed TLS handshakes of port scanners
		// and TCP probes among them) go to the daemon's log, not stderr.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelInfo),
	}
}

// bindServeFlags registers the flags of serve that mirror settings of the
// configuration file, bound to cfg's fields and defaulting to their values.
func bindServeFlags(fs *flag.FlagSet, cfg *daemon.Config) {
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "listen address, host:port (overrides listen of --config)")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "state directory (overrides data_dir of --config)")
	fs.StringVar(&cfg.MQTT.URL, "mqtt", cfg.MQTT.URL, "fleet broker URL, e.g. tcp://127.0.0.1:1883 (overrides mqtt.url of --config; empty: no fleet sync)")
	fs.StringVar(&cfg.MQTT.DeviceID, "device-id", cfg.MQTT.DeviceID, "device id in MQTT topics (overrides mqtt.device_id; default: the host name)")
	bindVisionFlags(fs, &cfg.Vision)
}

// serveConfig parses serve's flags into the Loader of the daemon's
// configuration: DefaultConfig, then the --config file, then the FACED_*
// variables of environ, then the flags given explicitly (fs.Visit: a flag
// left at its default does not undo the file or the environment). The
// Loader builds it again, file re-read, on every SIGHUP.
func serveConfig(args, environ []string, stderr io.Writer) (daemon.Loader, error) {
	fs := newFlagSet("serve", "", stderr)
	scratch := daemon.DefaultConfig()
	bindServeFlags(fs.FlagSet, &scratch)
	var file string
	fs.StringVar(&file, "config", "", "YAML configuration file (faced config default prints one; the package's is /etc/faced/faced.yaml); FACED_* variables and flags given explicitly override it")
	if err := fs.parse(args); err != nil {
		return daemon.Loader{}, err
	}
	// Replay the explicit flags onto the lower layers through a second
	// flag set bound to them: every flag's String() parses back to its value.
	var explicit [][2]string
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "config" {
			explicit = append(explicit, [2]string{f.Name, f.Value.String()})
		}
	})
	flags := func(cfg *daemon.Config) error {
		over := flag.NewFlagSet("serve", flag.ContinueOnError)
		over.SetOutput(io.Discard)
		bindServeFlags(over, cfg)
		for _, f := range explicit {
			if err := over.Set(f[0], f[1]); err != nil {
				return fmt.Errorf("serve: --%s: %w", f[0], err)
			}
		}
		return nil
	}
	return daemon.Loader{File: file, Environ: environ, Flags: flags}, nil
}

// cmdServe runs the daemon: loads the models and opens the store, provisions
// the configured API keys and serves HTTP(S) (on the sockets systemd
// passed, if any) until the context ends (SIGTERM), then drains in-flight
// requests and closes the daemon, the store last. Under systemd it reports
// READY=1 once serving, STATUS= lines, WATCHDOG=1 while a probe of the
// inference path and the store passes, and STOPPING=1. SIGHUP reloads the
// configuration (Daemon.Reload): keys, threshold, log level and TLS
// certificate, without dropping connections. A dialect with a listen of
// its own (dialects.<name>.listen) is also served at the root of that
// address.
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return serve(ctx, shutdownTimeout, args, stdout, stderr)
}

// serve is cmdServe with the drain cap as a parameter. Requests still
// running when it expires are cut (their connections closed) so that the
// daemon, store last, closes under no request.
func serve(ctx context.Context, drainCap time.Duration, args []string, stdout, stderr io.Writer) error {
	loader, err := serveConfig(args, os.Environ(), stderr)
	if err != nil {
		return err
	}
	// Catch SIGHUP from now on: one arriving while the models load is
	// applied once serving, instead of killing the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	cfg, err := loader.Load()
	if err != nil {
		return err
	}
	live := &daemon.Live{}
	live.Level.Set(cfg.SlogLevel())
	// Load the certificate before the models: a bad path fails at once.
	var tlsConfig *tls.Config
	if cfg.TLS.Enabled() {
		cert, err := daemon.LoadCertificate(cfg.TLS)
		if err != nil {
			return err
		}
		live.SetCertificate(cert)
		tlsConfig = live.TLSConfig()
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: &live.Level}))
	if loader.File != "" {
		logger.Info("configuration", "file", loader.File)
	}
	for _, e := range loader.EnvSettings() {
		logger.Info("setting from the environment", "var", e.Var, "setting", e.Field)
	}
	notify := daemon.NewNotifier(os.LookupEnv)
	watchdog, err := daemon.WatchdogInterval(os.LookupEnv, os.Getpid())
	if err != nil {
		logger.Warn("systemd watchdog off", "err", err)
	}
	listeners, err := daemon.ActivationListeners()
	if err != nil {
		return err
	}
	closeAll := func() {
		for _, ln := range listeners {
			ln.Close()
		}
	}
	sdNotify(logger, notify.Notify(daemon.Status("loading models and store")))

	d, err := daemon.Open(ctx, cfg.Options(version), logger)
	if err != nil {
		closeAll()
		return err
	}
	closeDaemon := func() error {
		if err := d.Close(); err != nil {
			return fmt.Errorf("serve: close: %w", err)
		}
		return nil
	}
	if err := daemon.ProvisionKeys(ctx, d.Store, cfg.Keys, logger); err != nil {
		closeAll()
		return errors.Join(err, closeDaemon())
	}
	acfg := api.Config{
		Service: d.Service, Logger: logger, Version: version, Backend: cfg.Vision.Backend,
		MaxBody: cfg.API.MaxBodyBytes, RequestTimeout: cfg.API.RequestTimeout,
		MaxInFlight: cfg.API.MaxInFlight, MaxQueue: cfg.API.MaxQueue,
		Fetch: api.FetchConfig{AllowHosts: cfg.Fetch.AllowHosts, MaxBytes: cfg.Fetch.MaxBytes, Timeout: cfg.Fetch.Timeout},
	}
	if d.Cameras != nil {
		acfg.Cameras = d.Cameras
	}
	acfg.Doors = d.Doors
	var srv *api.Server // the page's queue figures read it once serving
	// The admin page shows the configuration in effect: the loop below
	// swaps it on a successful reload.
	var effective atomic.Pointer[daemon.Config]
	first := cfg
	effective.Store(&first)
	// The page shows what `faced version` prints (the API's device keeps
	// the bare link-time version).
	bi, _ := debug.ReadBuildInfo()
	uiCfg := webui.Config{Service: d.Service, Logger: logger, Version: strings.TrimPrefix(versionString(version, revision, bi), "faced "), Backend: cfg.Vision.Backend,
		Doors: d.Doors, TLS: tlsConfig != nil, MaxUpload: cfg.API.MaxBodyBytes,
		Settings: func() ([]byte, error) { return daemon.MaskedYAML(*effective.Load()) },
		Queue:    func() (int, int, int) { return srv.QueueState() }}
	if d.Sync != nil {
		uiCfg.MQTTConnected = d.Sync.Connected
	}
	if d.Cameras != nil {
		uiCfg.Cameras = d.Cameras
	}
	ui, err := webui.New(uiCfg)
	if err != nil {
		closeAll()
		return errors.Join(err, closeDaemon())
	}
	acfg.UI = ui
	srv = api.New(acfg)
	if d.Doors != nil {
		if err := srv.RegisterMetrics(d.Doors); err != nil {
			logger.Warn("door metrics not registered", "err", err)
		}
	}
	if d.Cameras != nil {
		if err := srv.RegisterMetrics(d.Cameras); err != nil {
			logger.Warn("camera metrics not registered", "err", err)
		}
	}
	if d.Sync != nil {
		if err := srv.RegisterMetrics(d.Sync); err != nil {
			logger.Warn("sync metrics not registered", "err", err)
		}
	}
	if err := srv.RegisterMetrics(d.Pruner); err != nil {
		logger.Warn("retention metrics not registered", "err", err)
	}
	// Inference latency per model goes to /metrics.
	d.Service.Pipeline().SetObserver(srv.ObserveInference)
	// Every dialect below /compat/<name>; one with a listen of its own is
	// served at that listener's root too (the same handler).
	dialects := map[string]http.Handler{
		"users":      users.New(d.Service, srv, logger),
		"facesearch": facesearch.New(d.Service, srv, logger, facesearch.WithErrorAliases()),
		"trueface":   trueface.New(d.Service, srv, logger),
		"miicloud":   miicloud.New(d.Service, srv, logger),
		"findface":   findface.New(d.Service, srv, logger),
	}
	for _, n := range cfg.Dialects.ByName() {
		srv.Mount("/compat/"+n.Name, dialects[n.Name])
	}
	if len(listeners) > 0 {
		logger.Info("listening on the sockets systemd passed; listen setting not used", "sockets", len(listeners))
	} else {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return errors.Join(fmt.Errorf("serve: %w", err), closeDaemon())
		}
		listeners = []net.Listener{ln}
	}
	// At most api.max_connections client connections, over all listeners
	// (the dialects' own too).
	conns := daemon.NewConnLimit(cfg.API.MaxConnections)
	for i, ln := range listeners {
		listeners[i] = conns.Listener(ln)
	}
	if err := srv.RegisterMetrics(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "faced_http_connections_open",
		Help: "Client connections open (at most api.max_connections; more wait in the listen backlog).",
	}, func() float64 { return float64(conns.Open()) })); err != nil {
		logger.Warn("connection metric not registered", "err", err)
	}
	newServer := func(h http.Handler) *http.Server { return httpServer(cfg.API, h, tlsConfig, logger) }
	hs := newServer(srv.Handler())
	type serving struct {
		hs *http.Server
		ln net.Listener
	}
	var all []serving
	for _, ln := range listeners {
		all = append(all, serving{hs, ln})
	}
	// The dialects' own listeners, bound before anything is served so a
	// taken address fails the start, not a request later.
	servers := []*http.Server{hs}
	for _, n := range cfg.Dialects.ByName() {
		if n.Listen == "" {
			continue
		}
		ln, err := net.Listen("tcp", n.Listen)
		if err != nil {
			for _, s := range all {
				s.ln.Close()
			}
			return errors.Join(fmt.Errorf("serve: dialects.%s.listen: %w", n.Name, err), closeDaemon())
		}
		ds := newServer(srv.Root(n.Name, dialects[n.Name]))
		servers = append(servers, ds)
		all = append(all, serving{ds, conns.Listener(ln)})
		logger.Info("serving dialect", "dialect", n.Name, "addr", ln.Addr().String(), "tls", tlsConfig != nil)
	}
	var addrs []string
	for _, ln := range listeners {
		addrs = append(addrs, ln.Addr().String())
	}
	addr := strings.Join(addrs, ",")
	// Only now, with every listener bound: a start that fails earlier
	// must not leave a key in the store that was never shown.
	// Not cut by a stop signal that arrived while starting: the key is
	// made and shown, then the daemon stops as usual.
	if k, made, err := daemon.FirstRunKey(context.WithoutCancel(ctx), d.Store, time.Now()); err != nil {
		for _, s := range all {
			s.ln.Close()
		}
		return errors.Join(err, closeDaemon())
	} else if made {
		daemon.LogFirstRunKey(ctx, logger, k.Token, daemon.PageURL(addrs[0], tlsConfig != nil))
	}
	logger.Info("serving", "addr", addr, "tls", tlsConfig != nil, "backend", cfg.Vision.Backend,
		"embedder", d.Service.EmbedderID(), "faces", d.Service.IndexSize(), "data", cfg.DataDir)
	errc := make(chan error, len(all))
	for _, s := range all {
		go func() {
			if tlsConfig != nil {
				errc <- s.hs.ServeTLS(s.ln, "", "") // the certificate comes from TLSConfig
			} else {
				errc <- s.hs.Serve(s.ln)
			}
		}()
	}
	status := func() string {
		return fmt.Sprintf("serving on %s: %d faces, embedder %s", addr, d.Service.IndexSize(), d.Service.EmbedderID())
	}
	sdNotify(logger, notify.Ready(status()))

	wdCtx, stopWatchdog := context.WithCancel(context.Background())
	wdDone := make(chan struct{})
	if watchdog > 0 {
		logger.Info("systemd watchdog on", "timeout", watchdog, "probe_every", watchdog/2)
		go func() {
			defer close(wdDone)
			daemon.Watchdog{Interval: watchdog / 2, Probe: d.Probe, Logger: logger,
				Ping: func() error { return notify.Watchdog(status()) }}.Run(wdCtx)
		}()
	} else {
		close(wdDone)
	}

	running := cfg
	var serveErr error
loop:
	for {
		select {
		case serveErr = <-errc:
			break loop
		case <-hup:
			sdNotify(logger, notify.Reloading())
			next, err := loader.Load()
			if err == nil {
				running, err = d.Reload(ctx, running, next, live, logger)
			}
			if err != nil {
				for _, p := range daemon.Problems(err) {
					logger.Error("reload failed; running configuration kept", "err", p)
				}
			} else {
				applied := running // a copy: running changes at the next reload
				effective.Store(&applied)
				logger.Info("configuration reloaded", "file", loader.File, "log_level", running.LogLevel,
					"threshold", running.Service.Threshold, "keys", len(running.Keys))
			}
			sdNotify(logger, notify.Ready(status()))
		case <-ctx.Done():
			break loop
		}
	}

	sdNotify(logger, notify.Stopping("draining requests"))
	logger.Info("shutting down: draining requests")
	stopWatchdog()
	<-wdDone
	shutdown, cancel := context.WithTimeout(context.Background(), drainCap)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("drain cap reached: closing the connections of requests still running", "cap", drainCap)
			s.Close()
			serveErr = errors.Join(serveErr, fmt.Errorf("serve: drain: %w", err))
		}
	}
	// Only once no request runs: the daemon closes the store last.
	if err := closeDaemon(); err != nil {
		serveErr = errors.Join(serveErr, err)
	}
	if serveErr == nil {
		logger.Info("stopped")
	}
	return serveErr
}

// sdNotify logs a failed notification: systemd then times the service out
// (READY) or kills it (WATCHDOG), and the log says why.
func sdNotify(logger *slog.Logger, err error) {
	if err != nil {
		logger.Warn("systemd notification failed", "err", err)
	}
}
