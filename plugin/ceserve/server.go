// Package ceserve holds `wooevents serve`: a Cloud Elements-compatible
// `/elements/api-v2/instances` API that creates, changes and deletes
// WooCommerce event instances at run time and runs each one in the same
// process.
//
// An instance is the pipeline `import-cloud-elements` writes for its body
// (package ceimport), run as a benthos stream of its own: the project's
// woocommerce_poll or woocommerce_webhook input, the Cloud Elements envelope
// and signer, the http_callback output with retries and the dead-letter
// file. What a YAML user sets as environment variables comes from the
// instance (its body, and the webhook secret and paths the server
// generates). Instances are kept in a bbolt registry under the data
// directory, sealed with AES-GCM when WOOEVENTS_INSTANCES_KEY is set, and
// resume from their checkpoints after a restart. One HTTP listener serves
// the API and every webhook instance's receiver
// (`/elements/api-v2/events/woocommercerest/<id>`).
package ceserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/plugin/ceimport"

	// The components of the pipelines ceimport writes.
	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	_ "github.com/wooevents/wooevents/plugin/httpcallback"
	_ "github.com/wooevents/wooevents/plugin/prometheus"
	_ "github.com/wooevents/wooevents/plugin/signing"
	_ "github.com/wooevents/wooevents/plugin/wcpoll"
)

// API paths.
const (
	APIPrefix      = "/elements/api-v2"
	InstancesPath  = APIPrefix + "/instances"
	EventsPath     = APIPrefix + "/events/" + ceimport.ElementKey + "/"
	registryFile   = "instances.db"
	instancesDir   = "instances"
	deadLetterDir  = "dead-letter"
	defaultTimeout = 30 * time.Second
	// maxConcurrentBuilds bounds the instance pipelines built at once.
	maxConcurrentBuilds = 4
	// DefaultCallbackMaxInFlight is the notifications an instance sends at
	// once.
	DefaultCallbackMaxInFlight = 4
	// DefaultIdleStop is `serve --idle-stop`: instances polling every
	// minute or more stop their pipelines between polls.
	DefaultIdleStop = 30 * time.Second
)

// Options configure a Server.
type Options struct {
	// Address is the API's and the webhook receivers' listen address.
	Address string
	// Listener, when set, is served instead of listening on Address.
	Listener net.Listener
	// DataDir holds the registry, and each instance's checkpoints, spool
	// and dead letters.
	DataDir string
	// PublicURL is this server's base URL as the stores reach it; webhook
	// instances need it (their delivery URL is
	// <PublicURL>/elements/api-v2/events/woocommercerest/<id>).
	PublicURL string
	// UserSecret and OrganizationSecret are the API credentials
	// (`Authorization: User <secret>, Organization <secret>`). Required.
	UserSecret, OrganizationSecret string
	// InstancesKey, when set, seals the instance records (AES-GCM).
	InstancesKey []byte
	// MetricsAddress serves /metrics (Prometheus, every instance's pipeline
	// metrics with a wooevents_instance label), /ping and /ready. Empty: no
	// metrics.
	MetricsAddress string
	// Logger receives the server's and the pipelines' log lines.
	Logger *slog.Logger
	// StoreHTTPClient, when set, is used for the store checks and webhook
	// removal (tests with a TLS store).
	StoreHTTPClient *http.Client
	// CallbackMaxInFlight is every instance's callback output's
	// max_in_flight (default DefaultCallbackMaxInFlight; the YAML pipelines
	// use 16): each one is a goroutine per instance.
	CallbackMaxInFlight int
	// IdleStop stops a polling instance's pipeline when it has nothing to
	// do (every resource polled, every notification delivered or
	// dead-lettered) and its next poll is at least this far away, and
	// builds it again for that poll: an idle instance then holds no
	// goroutines and almost no memory. Zero keeps every pipeline running.
	IdleStop time.Duration
	// RegisterTimeout bounds how long creating a webhook instance waits for
	// its first webhook registration (default 30s); after it the instance is
	// created and its status tells how registration goes.
	RegisterTimeout time.Duration
}

// Server is a running `wooevents serve`.
type Server struct {
	opts  Options
	log   *slog.Logger
	creds credentials
	reg   *registry
	env   *service.Environment
	// schema is every instance's config schema (StreamBuilder.SetSchema):
	// one copy, where each builder would make and keep its own.
	schema *service.ConfigSchema
	// metricsNames are the metrics exporters of env, which every
	// instance's environment copies.
	metricsNames []string
	metrics      *service.Metrics // nil without MetricsAddress

	closeMetrics  func(context.Context) error
	ln, metricsLn net.Listener
	httpSrv       *http.Server
	serving       atomic.Bool // the API listener is served (/ready)
	metricsSrv    *http.Server
	serveErr      chan error

	// building bounds the pipelines built at once (a restart starts every
	// instance).
	building chan struct{}

	mu        sync.RWMutex
	instances map[int64]*instance
	closeOnce sync.Once
}

var dataDirOK = func(p string) bool { return !strings.ContainsAny(p, "#'\"${}\\ \t\r\n") }

// New checks the options and opens the registry; Start serves.
func New(opts Options) (*Server, error) {
	if opts.UserSecret == "" || opts.OrganizationSecret == "" {
		return nil, fmt.Errorf("set %s and %s: every API call must carry them", EnvUserSecret, EnvOrganizationSecret)
	}
	if opts.Address == "" {
		opts.Address = "127.0.0.1:8080"
	}
	if opts.DataDir == "" {
		opts.DataDir = "./data"
	}
	if opts.CallbackMaxInFlight <= 0 {
		opts.CallbackMaxInFlight = DefaultCallbackMaxInFlight
	}
	if opts.RegisterTimeout <= 0 {
		opts.RegisterTimeout = defaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stdout, nil))
	}
	dir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if !dataDirOK(dir) {
		return nil, fmt.Errorf("data dir %q: the path must not contain spaces, quotes, '#', '$', '{', '}' or '\\' (it is written into the instances' pipelines)", dir)
	}
	opts.DataDir = dir
	if opts.PublicURL != "" {
		u, err := url.Parse(opts.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("public URL %q: want an http:// or https:// base URL without query", opts.PublicURL)
		}
		opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	}
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		creds:     credentials{user: digestOf(opts.UserSecret), org: digestOf(opts.OrganizationSecret)},
		instances: map[int64]*instance{},
		serveErr:  make(chan error, 2),
		building:  make(chan struct{}, maxConcurrentBuilds),
	}
	if s.env, err = pipelineEnvironment(); err != nil {
		return nil, fmt.Errorf("instance pipelines: %w", err)
	}
	s.schema = s.env.FullConfigSchema("", "")
	s.env.WalkMetrics(func(name string, _ *service.ConfigView) { s.metricsNames = append(s.metricsNames, name) })
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if s.reg, err = openRegistry(filepath.Join(dir, registryFile), opts.InstancesKey); err != nil {
		return nil, fmt.Errorf("instance registry: %w", err)
	}
	if opts.InstancesKey == nil {
		s.log.Warn("instance secrets are stored unencrypted: set " + EnvInstancesKey + " to seal them (AES-GCM)")
	}
	return s, nil
}

// deliveryURL is where a webhook instance's store delivers.
func (s *Server) deliveryURL(id int64) string {
	return s.opts.PublicURL + EventsPath + strconv.FormatInt(id, 10)
}

// Start loads and starts every instance, then serves the API.
func (s *Server) Start() error {
	if s.opts.MetricsAddress != "" {
		if err := s.startMetrics(); err != nil {
			return err
		}
	}
	recs, err := s.reg.load()
	if err != nil {
		return fmt.Errorf("instance registry: %w", err)
	}
	ln := s.opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", s.opts.Address); err != nil {
			return fmt.Errorf("listen on %s: %w", s.opts.Address, err)
		}
	}
	s.ln = ln
	for _, rec := range recs {
		parsed, err := ceimport.Parse(rec.Body)
		if err != nil {
			// Only a stricter build could refuse a stored body: keep the
			// instance listed, failing, so it can be patched or deleted.
			in := newInstance(s, rec, nil)
			in.visible = true
			in.st.pipelineFailed("the stored body is no longer valid: " + apiMessage(err))
			s.add(in)
			continue
		}
		in := newInstance(s, rec, parsed)
		in.visible = true
		s.add(in)
		in.start()
	}
	s.log.Info("serving the instances API", "address", ln.Addr().String(), "instances", len(recs), "data_dir", s.opts.DataDir)
	s.httpSrv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      2*storeCheckTimeout + s.opts.RegisterTimeout + time.Minute,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn), // panics in handlers, TLS errors
	}
	go func() { s.serveErr <- s.httpSrv.Serve(ln) }()
	s.serving.Store(true)
	return nil
}

func (s *Server) startMetrics() error {
	mux := http.NewServeMux()
	rb := service.NewResourceBuilder()
	rb.SetHTTPMux(mux)
	rb.SetLogger(s.log)
	if err := rb.SetMetricsYAML("prometheus:\n  add_process_metrics: true\n  add_go_metrics: true\n"); err != nil {
		return err
	}
	res, closeFn, err := rb.Build()
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	s.metrics, s.closeMetrics = res.Metrics(), closeFn
	mux.HandleFunc("/ping", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("pong")) })
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !s.serving.Load() {
			http.Error(w, "not serving yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("OK"))
	})
	ln, err := net.Listen("tcp", s.opts.MetricsAddress)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", s.opts.MetricsAddress, err)
	}
	s.metricsLn = ln
	s.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { s.serveErr <- s.metricsSrv.Serve(ln) }()
	return nil
}

// Addr is the API's listen address (after Start).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Err is a listener that stopped on its own.
func (s *Server) Err() <-chan error { return s.serveErr }

// Close stops serving, stops every instance gracefully (checkpoints are
// stored), and closes the registry.
func (s *Server) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		if s.httpSrv != nil {
			if serr := s.httpSrv.Shutdown(ctx); serr != nil {
				_ = s.httpSrv.Close()
			}
		}
		s.mu.RLock()
		all := make([]*instance, 0, len(s.instances))
		for _, in := range s.instances {
			all = append(all, in)
		}
		s.mu.RUnlock()
		var wg sync.WaitGroup
		for _, in := range all {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in.stop()
			}()
		}
		wg.Wait()
		if s.metricsSrv != nil {
			_ = s.metricsSrv.Shutdown(ctx)
		}
		if s.closeMetrics != nil {
			_ = s.closeMetrics(ctx)
		}
		err = s.reg.close()
	})
	return err
}

func (s *Server) add(in *instance) {
	s.mu.Lock()
	s.instances[in.id] = in
	s.mu.Unlock()
}

func (s *Server) remove(id int64) {
	s.mu.Lock()
	delete(s.instances, id)
	s.mu.Unlock()
}

// get returns an instance the API may address (nil when unknown).
func (s *Server) get(id int64) *instance {
	s.mu.RLock()
	in := s.instances[id]
	s.mu.RUnlock()
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.visible {
		return nil
	}
	return in
}

func (s *Server) list() []*instance {
	s.mu.RLock()
	out := make([]*instance, 0, len(s.instances))
	for _, in := range s.instances {
		out = append(out, in)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	vis := out[:0]
	for _, in := range out {
		in.mu.Lock()
		if in.visible {
			vis = append(vis, in)
		}
		in.mu.Unlock()
	}
	return vis
}

// removeState deletes an instance's poll state and spool; its dead letters
// stay (they hold notifications that were never delivered).
func (s *Server) removeState(in *instance) {
	dir := in.dir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("removing the instance's state", "instance", in.id, "error", err)
		}
		return
	}
	kept := false
	for _, e := range entries {
		if e.Name() == deadLetterDir {
			kept = true
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			s.log.Warn("removing the instance's state", "instance", in.id, "error", err)
		}
	}
	if !kept {
		_ = os.Remove(dir)
	}
}
