package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxGalleryMetrics bounds the faced_gallery_faces series one scrape
// reports (galleries beyond it, by name, are left out; faced_faces
// still counts their faces), so a device with very many galleries cannot
// blow up a Prometheus server's cardinality or a scrape's time.
const maxGalleryMetrics = 1000

// routeUnmatched labels requests no route matched (404, 405), so a scanner
// probing random paths adds no series.
const routeUnmatched = "unmatched"

// metrics are one Server's Prometheus collectors.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec   // route, code
	duration  *prometheus.HistogramVec // route
	inference *prometheus.HistogramVec // model
	busy      prometheus.Counter
}

// newMetrics registers a server's metrics.
//
// The metrics use github.com/prometheus/client_golang, the Prometheus
// project's own client and the Go ecosystem's standard one: its text
// exposition, histograms and runtime/process collectors are what every
// scraper expects, and writing our own would only re-implement them less
// well. The registry is per Server, never prometheus.DefaultRegisterer:
// several servers (tests, vendor dialects) can live in one process without
// sharing counters or panicking on duplicate registration, and nothing
// outside this server adds series to what /metrics exposes.
func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faced_http_requests_total",
			Help: "HTTP requests by route (the ServeMux pattern, or \"unmatched\") and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "faced_http_request_duration_seconds",
			Help:    "HTTP request duration by route, queueing for inference included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		inference: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "faced_inference_duration_seconds",
			Help:    "Duration of one model run on the accelerator (one session run), by catalogue model name.",
			Buckets: prometheus.ExponentialBuckets(.0005, 2, 14), // 0.5 ms to 4 s
		}, []string{"model"}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faced_inference_busy_total",
			Help: "Requests refused with 429 because the inference queue was full.",
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.inference, m.busy,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "faced_inference_queue_waiting",
			Help: "Requests waiting for an inference slot.",
		}, func() float64 { return float64(s.queued.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "faced_http_requests_in_flight",
			Help: "HTTP requests being served, native and vendor dialects, from the first byte of their body read to their response (this scrape included).",
		}, func() float64 { return float64(s.active.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "faced_inference_in_flight",
			Help: "Requests holding an inference slot.",
		}, func() float64 { return float64(len(s.slots)) }),
		serviceCollector{s},
	)
	return m
}

// observeRequest counts one finished request. pattern is the request's
// r.Pattern after routing: the route, never the raw path, whose ids would
// make a series per person or face.
func (m *metrics) observeRequest(pattern string, status int, took time.Duration) {
	if pattern == "" {
		pattern = routeUnmatched
	}
	m.requests.WithLabelValues(pattern, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(pattern).Observe(took.Seconds())
}

// ObserveInference records one model run. Hand it to the pipeline
// (face.Config.Observe, daemon.VisionConfig.Observe or
// face.Pipeline.SetObserver) to fill faced_inference_duration_seconds.
func (s *Server) ObserveInference(model string, d time.Duration) {
	s.metrics.inference.WithLabelValues(model).Observe(d.Seconds())
}

// RegisterMetrics adds a collector of another part of the daemon (fleet
// sync) to /metrics.
func (s *Server) RegisterMetrics(c prometheus.Collector) error {
	return s.metrics.reg.Register(c)
}

// metricsHandler serves GET /metrics in the Prometheus text format.
func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{
		ErrorLog:      slogPrintln{s.cfg.Logger},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      s.metrics.reg, // counts its own errors
		// The route needs no key: bound what an anonymous caller can ask
		// of the store.
		MaxRequestsInFlight: 2,
		Timeout:             10 * time.Second,
	})
}

// slogPrintln adapts slog to promhttp's error log.
type slogPrintln struct{ l *slog.Logger }

func (p slogPrintln) Println(v ...any) { p.l.Warn("metrics", "error", fmt.Sprint(v...)) }

// serviceCollector reads the service's sizes at scrape time; it reports
// nothing while the server is not ready.
type serviceCollector struct{ s *Server }

var (
	descGalleryFaces  = prometheus.NewDesc("faced_gallery_faces", fmt.Sprintf("Searchable faces per gallery (the first %d galleries by name).", maxGalleryMetrics), []string{"gallery"}, nil)
	descFacesTotal    = prometheus.NewDesc("faced_faces", "Searchable faces in the index.", nil, nil)
	descOutboxDepth   = prometheus.NewDesc("faced_outbox_depth", "Messages waiting in the fleet outbox.", nil, nil)
	descOutboxBytes   = prometheus.NewDesc("faced_outbox_bytes", "Bytes (topics and payloads) waiting in the fleet outbox.", nil, nil)
	descOutboxDropped = prometheus.NewDesc("faced_outbox_dropped_total", "Outbox messages dropped by the queue's bound since the store was created.", nil, nil)
)

func (c serviceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descGalleryFaces, descFacesTotal, descOutboxDepth, descOutboxBytes, descOutboxDropped} {
		ch <- d
	}
}

func (c serviceCollector) Collect(ch chan<- prometheus.Metric) {
	svc := c.s.svc.Load()
	if svc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch <- prometheus.MustNewConstMetric(descFacesTotal, prometheus.GaugeValue, float64(svc.IndexSize()))
	if counts, _, err := svc.GalleryCounts(ctx, maxGalleryMetrics); err != nil {
		ch <- prometheus.NewInvalidMetric(descGalleryFaces, err)
	} else {
		for _, g := range counts {
			ch <- prometheus.MustNewConstMetric(descGalleryFaces, prometheus.GaugeValue, float64(g.Faces), g.Name)
		}
	}
	if st, err := svc.OutboxStats(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(descOutboxDepth, err)
	} else {
		ch <- prometheus.MustNewConstMetric(descOutboxDepth, prometheus.GaugeValue, float64(st.Count))
		ch <- prometheus.MustNewConstMetric(descOutboxBytes, prometheus.GaugeValue, float64(st.Bytes))
		ch <- prometheus.MustNewConstMetric(descOutboxDropped, prometheus.CounterValue, float64(st.Dropped))
	}
}
