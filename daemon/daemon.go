package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/facedhq/faced/camera"
	"github.com/facedhq/faced/door"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
	fleetsync "github.com/facedhq/faced/sync"
)

// Daemon is everything `faced serve` runs: the models, the store, the
// service over both, fleet sync when configured, and the local control
// socket.
type Daemon struct {
	Vision  *Vision
	Store   *store.DB
	Service *service.Service
	// Sync is nil unless MQTT is configured.
	Sync *fleetsync.Syncer
	// Pruner enforces store.retention in the background.
	Pruner     *Pruner
	stopPruner context.CancelFunc
	prunerDone chan struct{}
	control    *ControlServer
	flush      time.Duration
	// stopReembed ends the background re-embedding of kept face crops
	// and waits for it (nil when none runs).
	stopReembed func()
	// Cameras watches the configured cameras (nil when there are none).
	Cameras     *camera.Manager
	stopCameras func()
	// Doors decides at the configured doors (nil when there are none).
	Doors     *door.Controller
	stopDoors func()
}

// Options are what Open sets up.
type Options struct {
	DataDir string
	Vision  VisionConfig
	Service service.Config
	// MQTT starts fleet sync when enabled; its outbox bounds apply to the
	// store either way.
	MQTT MQTTConfig
	// Version is reported to the fleet.
	Version string
	// Retention bounds events and kept crops; the zero value prunes
	// nothing.
	Retention RetentionConfig
	// Cameras to watch (Config.CameraConfigs).
	Cameras []camera.Config
	// Doors and the default threshold their entries fall back on.
	Doors            []DoorConfig
	DefaultThreshold service.Threshold
	// GPIO opens the doors' relay and Wiegand lines; nil is the Linux
	// GPIO character device (tests pass a fake).
	GPIO door.Chip
}

// Options gathers what Open needs from the configuration, which must have
// passed Validate.
func (cfg Config) Options(version string) Options {
	cams, _ := cfg.CameraConfigs() // checked by Validate
	return Options{DataDir: cfg.DataDir, Vision: cfg.Vision, Service: cfg.ServiceConfig(), MQTT: cfg.MQTT, Version: version,
		Retention: cfg.Store.Retention, Cameras: cams, Doors: cfg.Doors, DefaultThreshold: cfg.ServiceConfig().Threshold}
}

// Open loads the models and opens the store at the same time (each takes
// about a second with large galleries), then builds the service's index
// and starts fleet sync, which connects in the background: the daemon
// works the same while the broker is unreachable.
func Open(ctx context.Context, opts Options, logger *slog.Logger) (*Daemon, error) {
	dataDir, vcfg, scfg := opts.DataDir, opts.Vision, opts.Service
	var syncCfg fleetsync.Config
	if opts.MQTT.Enabled() {
		var err error
		if syncCfg, err = opts.MQTT.SyncConfig(opts.Version); err != nil {
			return nil, fmt.Errorf("daemon: %w", err)
		}
		// Every recorded event is queued for the fleet with it.
		scfg.EventQueue = fleetsync.EventQueue(syncCfg)
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("daemon: data dir: %w", err)
	}
	type visionResult struct {
		v   *Vision
		err error
	}
	vc := make(chan visionResult, 1)
	go func() {
		v, err := OpenVision(ctx, vcfg)
		vc <- visionResult{v, err}
	}()
	db, dbErr := store.Open(DBPath(dataDir), store.Options{
		OutboxMaxCount: opts.MQTT.OutboxMaxMessages, OutboxMaxBytes: opts.MQTT.OutboxMaxBytes,
	})
	vr := <-vc
	if err := errors.Join(dbErr, vr.err); err != nil {
		if db != nil {
			db.Close()
		}
		if vr.v != nil {
			vr.v.Close()
		}
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d := &Daemon{Vision: vr.v, Store: db, flush: opts.MQTT.ShutdownFlush}
	var err error
	if d.Service, err = service.New(ctx, db, vr.v.Pipeline, scfg, logger); err != nil {
		d.Close()
		return nil, err
	}
	if scfg.KeepImages {
		d.startReembed(ctx, logger)
	}
	if opts.MQTT.Enabled() {
		if d.Sync, err = fleetsync.New(syncCfg, d.Service, logger); err != nil {
			d.Close()
			return nil, err
		}
		// Not ctx: sync runs until Close, which flushes it.
		d.Sync.Start(context.WithoutCancel(ctx))
		logger.Info("fleet sync on", "broker", fleetsync.RedactURL(syncCfg.URL), "device_id", syncCfg.DeviceID, "topics", syncCfg.TopicPrefix+"/"+syncCfg.DeviceID+"/#")
	}
	if d.control, err = StartControl(dataDir, db, logger); err != nil {
		d.Close()
		return nil, err
	}
	if len(opts.Cameras) > 0 {
		var onState func(id, state, errText string)
		if opts.MQTT.Enabled() {
			onState = func(id, state, errText string) {
				m, err := fleetsync.CameraMessage(syncCfg, id, state, errText, time.Now())
				if err == nil {
					err = d.Service.EnqueueOutbox(context.Background(), m)
				}
				if err != nil {
					logger.Warn("camera state not queued for the fleet", "camera", id, "err", err)
				}
			}
		}
		if d.Cameras, err = camera.NewManager(opts.Cameras, d.Service, logger, onState); err != nil {
			d.Close()
			return nil, fmt.Errorf("daemon: %w", err)
		}
		if d.Sync != nil {
			d.Sync.SetCameraStatus(d.cameraInfo)
		}
	}
	// Doors before the cameras run, so that no decision goes unheard.
	if len(opts.Doors) > 0 {
		if err := d.openDoors(ctx, opts, syncCfg, logger); err != nil {
			d.Close()
			return nil, fmt.Errorf("daemon: %w", err)
		}
	}
	if d.Cameras != nil {
		// Not ctx: cameras run until Close, which decides their open
		// tracks before the store closes.
		cctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() { defer close(done); d.Cameras.Run(cctx) }()
		d.stopCameras = func() { stop(); <-done }
		logger.Info("cameras on", "count", len(opts.Cameras))
	}
	// Prune at once (a device that was off for months starts with its
	// history already due) and then on schedule; not ctx: until Close.
	d.Pruner = NewPruner(db, opts.Retention, logger)
	if opts.Retention.Interval > 0 {
		pctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		d.stopPruner, d.prunerDone = stop, make(chan struct{})
		go func() { defer close(d.prunerDone); d.Pruner.Run(pctx) }()
	}
	return d, nil
}

// Close stops fleet sync (publishing what it can of the outbox within
// mqtt.shutdown_flush), the pruner, the control socket, then closes the
// store and the models.
func (d *Daemon) Close() error {
	var errs []error
	if d.stopCameras != nil {
		d.stopCameras()
	}
	if d.stopDoors != nil {
		d.stopDoors()
	}
	if d.stopReembed != nil {
		d.stopReembed()
	}
	if d.Sync != nil {
		ctx, cancel := context.WithTimeout(context.Background(), d.flush)
		errs = append(errs, d.Sync.Close(ctx))
		cancel()
	}
	if d.stopPruner != nil {
		// A prune stops between batches; what it removed stays removed.
		d.stopPruner()
		<-d.prunerDone
	}
	if d.control != nil {
		errs = append(errs, d.control.Close())
	}
	if d.Store != nil {
		errs = append(errs, d.Store.Close())
	}
	if d.Vision != nil {
		errs = append(errs, d.Vision.Close())
	}
	return errors.Join(errs...)
}

// startReembed moves the faces of another embedder whose aligned crops
// were kept to the running embedder, in the background: after a switch of
// embedder the daemon serves at once and each face becomes searchable as
// soon as it is re-embedded (GET /v1/reembed shows the progress). Faces
// without a crop wait for their persons to be re-enrolled.
func (d *Daemon) startReembed(ctx context.Context, logger *slog.Logger) {
	// Not ctx: the run belongs to the daemon and ends at Close.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := d.Service.Reembed(rctx); err != nil && rctx.Err() == nil {
			logger.Error("re-embedding kept face crops failed", "err", err)
		}
	}()
	d.stopReembed = func() {
		cancel()
		<-done
	}
}

// cameraInfo is the cameras' part of the fleet status.
func (d *Daemon) cameraInfo() []fleetsync.CameraInfo {
	var out []fleetsync.CameraInfo
	for _, s := range d.Cameras.Status() {
		out = append(out, fleetsync.CameraInfo{ID: s.ID, State: s.State, Error: s.Error})
	}
	return out
}
