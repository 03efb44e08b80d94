package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// Daemon is everything `faced serve` runs: the models, the store, the
// service over both, and the local control socket.
type Daemon struct {
	Vision  *Vision
	Store   *store.DB
	Service *service.Service
	control *ControlServer
}

// Open loads the models and opens the store at the same time (each takes
// about a second with large galleries), then builds the service's index.
func Open(ctx context.Context, dataDir string, vcfg VisionConfig, scfg service.Config, logger *slog.Logger) (*Daemon, error) {
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
	db, dbErr := store.Open(DBPath(dataDir), store.Options{})
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
	d := &Daemon{Vision: vr.v, Store: db}
	var err error
	if d.Service, err = service.New(ctx, db, vr.v.Pipeline, scfg, logger); err != nil {
		d.Close()
		return nil, err
	}
	if d.control, err = StartControl(dataDir, db, logger); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Close stops the control socket, then closes the store and the models.
func (d *Daemon) Close() error {
	var errs []error
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
