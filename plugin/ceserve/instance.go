package ceserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"
	"gopkg.in/yaml.v3"

	"github.com/wooevents/wooevents/plugin/ceimport"
	"github.com/wooevents/wooevents/plugin/wcpoll"
	"github.com/wooevents/wooevents/plugin/wcwebhook"
)

// Modes of an instance (configuration.event.vendor.type).
const (
	ModePolling = ceimport.ModePolling
	ModeWebhook = ceimport.ModeWebhook
)

// TuningVars are the variables of the pipeline an instance may take from
// the server's own environment, the same for every instance: callback
// retry tuning. Every other variable comes from the instance (its body and
// what the server generated for it) or takes the pipeline's default, so a
// variable set for the server never leaks into an instance.
var TuningVars = map[string]bool{
	"WOOEVENTS_CALLBACK_MAX_ATTEMPTS":    true,
	"WOOEVENTS_CALLBACK_MAX_ELAPSED":     true,
	"WOOEVENTS_CALLBACK_TIMEOUT":         true,
	"WOOEVENTS_CALLBACK_INITIAL_BACKOFF": true,
}

// instanceMetricsName is the metrics exporter of an instance's stream,
// registered in that stream's own environment only.
const instanceMetricsName = "wooevents_instance"

// Pipeline restart backoff after a failure, and the graceful stop budget.
const (
	restartMin  = time.Second
	restartMax  = time.Minute
	stopTimeout = 10 * time.Second
)

// instance is one instance: its record and its running pipeline.
type instance struct {
	srv *Server
	id  int64
	st  *status

	// opMu serialises the API's changes (PATCH, DELETE) to the instance.
	opMu sync.Mutex

	mu       sync.Mutex
	rec      *Record
	parsed   *ceimport.Instance
	visible  bool         // listed and addressable by the API
	receiver http.Handler // the webhook input's handler while connected
	recvPath string
	cur      *pipelineRun // nil when stopped

	// idle carries the poll input's latest idle notice (wcpoll.IdleNotifier).
	idle chan time.Time
}

// pipelineRun is one start of the instance's pipeline (until stop).
type pipelineRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// newInstance is an instance of rec; parsed is nil when the stored body no
// longer parses (listed, failing, until patched or deleted).
func newInstance(srv *Server, rec *Record, parsed *ceimport.Instance) *instance {
	mode := ""
	if parsed != nil {
		mode = parsed.Mode()
	}
	return &instance{srv: srv, id: rec.ID, rec: rec, parsed: parsed, st: newStatus(mode),
		idle: make(chan time.Time, 1)}
}

// label is the pipeline input's label: it names the instance's webhooks in
// the store (`wooevents [instance_<id>] order.created`).
func (in *instance) label() string { return "instance_" + strconv.FormatInt(in.id, 10) }

// dir holds the instance's poll state, spool and dead letters.
func (in *instance) dir() string {
	return filepath.Join(in.srv.opts.DataDir, instancesDir, strconv.FormatInt(in.id, 10))
}

func (in *instance) snapshot() (*Record, *ceimport.Instance) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.rec, in.parsed
}

// start runs the pipeline until stop, rebuilding it with a backoff when it
// fails: a failing instance never stops the others.
func (in *instance) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r := &pipelineRun{cancel: cancel, done: make(chan struct{})}
	in.mu.Lock()
	in.cur = r
	rec, parsed := in.rec, in.parsed
	in.mu.Unlock()
	in.st.update(func(time.Time) { in.st.mode = parsed.Mode() })
	go in.loop(ctx, r, rec, parsed)
}

func (in *instance) loop(ctx context.Context, r *pipelineRun, rec *Record, parsed *ceimport.Instance) {
	defer close(r.done)
	defer in.st.pipelineStopped()
	wait := restartMin
	for {
		select {
		case in.srv.building <- struct{}{}:
		case <-ctx.Done():
			return
		}
		strm, err := in.build(rec, parsed)
		<-in.srv.building
		if err == nil {
			in.st.pipelineStarted()
			var next time.Time
			next, err = in.run(ctx, strm)
			if ctx.Err() != nil {
				return
			}
			if !next.IsZero() {
				// Idle: nothing to do until the next poll, for which the
				// pipeline is built again (from its checkpoint).
				in.st.pipelineIdle(next)
				wait = restartMin
				t := time.NewTimer(time.Until(next))
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				continue
			}
			if err == nil {
				err = errors.New("the pipeline ended")
			}
		}
		in.st.pipelineFailed(err.Error())
		in.srv.log.Error("instance pipeline failed; restarting", "instance", in.id, "in", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(wait*2, restartMax)
	}
}

// run runs strm until ctx ends, the stream fails, or its poll input is
// idle with its next poll at least Options.IdleStop away. In the first
// and the last case it stops the stream gracefully (the poll input stores
// its checkpoint); next is the idle input's next poll, zero otherwise.
func (in *instance) run(ctx context.Context, strm *service.Stream) (next time.Time, err error) {
	select { // a notice of an earlier run
	case <-in.idle:
	default:
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- strm.Run(runCtx) }()
wait:
	for {
		select {
		case err = <-done:
			if ctx.Err() == nil {
				return time.Time{}, err // the stream ended or failed on its own
			}
			break wait // stopped: stop it gracefully
		case t := <-in.idle:
			if time.Until(t) < in.srv.opts.IdleStop {
				continue // the next poll is near: keep the pipeline
			}
			next = t
			cancel()
			if rerr := <-done; rerr != nil && !errors.Is(rerr, context.Canceled) {
				in.srv.log.Warn("instance pipeline stopped with an error when idle", "instance", in.id, "error", rerr)
			}
			break wait
		}
	}
	if serr := strm.StopWithin(stopTimeout); serr != nil {
		in.srv.log.Warn("instance pipeline did not stop gracefully", "instance", in.id, "error", serr)
	}
	return next, nil
}

// Idle is the instance's wcpoll.IdleNotifier: the poll input has nothing
// to do until next. It keeps the latest notice.
func (in *instance) Idle(next time.Time) {
	for {
		select {
		case in.idle <- next:
			return
		default:
		}
		select {
		case <-in.idle:
		default:
		}
	}
}

// stop stops the pipeline gracefully and waits for it.
func (in *instance) stop() {
	in.mu.Lock()
	r := in.cur
	in.cur = nil
	in.mu.Unlock()
	if r != nil {
		r.cancel()
		<-r.done
	}
}

// vars are the pipeline's environment: from the body (ceimport) and from
// the server.
func (in *instance) vars(rec *Record, parsed *ceimport.Instance) map[string]string {
	vars := parsed.Env()
	vars[ceimport.EnvDataDir] = in.dir()
	vars[ceimport.EnvPollStartFrom] = "now"
	if parsed.Mode() == ModeWebhook {
		vars[ceimport.EnvWebhookSecret] = rec.WebhookSecret
		vars[ceimport.EnvDeliveryURL] = in.srv.deliveryURL(in.id)
		// No EnvWebhookAddress: the input opens no listener, its handler is
		// mounted on the server's (Mount).
	}
	return vars
}

// build makes the instance's stream: the pipeline ceimport writes for the
// body, in an environment of its own whose variables (`${…}` and Bloblang's
// env()) are the instance's, whose metrics feed its status and whose webhook
// input is served by the server's listener.
//
// What every instance would otherwise hold a copy of is shared: the
// components (the environment is a shallow copy of the server's, with a
// metrics registry of its own), the config schema, and the Bloblang methods;
// the instance's Bloblang environment holds only the functions its pipeline
// calls. The YAML is not linted again: it is ceimport's, linted by its tests
// and once per mode at server start (pipelineEnvironment); linting would
// parse every mapping a second time.
func (in *instance) build(rec *Record, parsed *ceimport.Instance) (*service.Stream, error) {
	conf, err := parsed.Pipeline(ceimport.PipelineOptions{InputLabel: in.label(), StateName: "instance",
		CallbackMaxInFlight: in.srv.opts.CallbackMaxInFlight})
	if err != nil {
		return nil, err
	}
	vars := in.vars(rec, parsed)
	lookup := func(k string) (string, bool) {
		if v, ok := vars[k]; ok {
			return v, true
		}
		if TuningVars[k] {
			return os.LookupEnv(k)
		}
		return "", false
	}
	// WithMetrics shares every component registry of the server's
	// environment and gives this one a metrics registry of its own (a copy
	// of the server's few entries: the config's default exporter must
	// parse): registering the instance's exporter there changes nothing for
	// the others.
	env := in.srv.env.WithMetrics(in.srv.metricsNames...)
	blobl, err := bloblangWithEnv(lookup, calledFunctions(conf))
	if err != nil {
		return nil, err
	}
	env.UseBloblangEnvironment(blobl)
	im := &instanceMetrics{st: in.st, shared: in.srv.metrics, id: strconv.FormatInt(in.id, 10)}
	if err := env.RegisterMetricsExporter(instanceMetricsName, service.NewConfigSpec(),
		func(*service.ParsedConfig, *service.Logger) (service.MetricsExporter, error) { return im, nil }); err != nil {
		return nil, err
	}
	sb := env.NewStreamBuilder()
	sb.SetSchema(in.srv.schema)
	sb.DisableLinting()
	sb.SetEnvVarLookupFunc(lookup)
	sb.SetHTTPMux(discardMux{})
	sb.SetLogger(slog.New(&logHandler{next: in.srv.log.Handler(), st: in.st, attrs: []slog.Attr{slog.Int64("instance", in.id)}}))
	if err := sb.SetYAML(string(conf)); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	// One processing thread: an instance's processors are two mappings, and
	// the default (one per CPU) costs goroutines on every instance.
	sb.SetThreads(1)
	if err := sb.SetMetricsYAML(instanceMetricsName + ": {}"); err != nil {
		return nil, err
	}
	strm, err := sb.Build()
	if err != nil {
		return nil, err
	}
	if parsed.Mode() == ModeWebhook {
		// The woocommerce_webhook input, built when the stream runs, serves
		// on the server's listener (Mount) instead of opening its own.
		wcwebhook.SetMounter(strm.Resources(), in)
	}
	if parsed.Mode() == ModePolling && in.srv.opts.IdleStop > 0 {
		// The woocommerce_poll input tells when it is idle (run).
		wcpoll.SetIdleNotifier(strm.Resources(), in)
	}
	if err := initResources(strm, conf); err != nil {
		return nil, err
	}
	return strm, nil
}

// initResources builds every processor resource of the pipeline once, now.
// benthos v4.60.0 builds resources on first use, under a read lock
// (internal/manager/live_resources.go, RAccess): two first uses at once —
// the callback output's concurrent attempts running cloud_elements_signer —
// can call the initialiser after the other set it to nil, and crash the
// process, every instance with it.
func initResources(strm *service.Stream, conf []byte) error {
	var doc struct {
		ProcessorResources []struct {
			Label string `yaml:"label"`
		} `yaml:"processor_resources"`
	}
	if err := yaml.Unmarshal(conf, &doc); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	res := strm.Resources()
	for _, p := range doc.ProcessorResources {
		if err := res.AccessProcessor(context.Background(), p.Label, func(*service.ResourceProcessor) {}); err != nil {
			return fmt.Errorf("processor resource %s: %w", p.Label, err)
		}
	}
	return nil
}

// pipelineEnvironment is the environment every instance's environment is a
// shallow copy of: the components the pipelines ceimport writes use (found
// by walking one pipeline of each mode), and nothing else. Building the
// samples lints them: the instances' builds do not.
func pipelineEnvironment() (*service.Environment, error) {
	full := service.NewEnvironment()
	names := map[string]bool{"none": true}
	samples := map[string]string{
		ModePolling: `{"element":{"key":"woocommercerest"},"configuration":{"store.url":"https://store.example","oauth.api.key":"ck_x","oauth.api.secret":"cs_x","event.notification.enabled":true,"event.vendor.type":"polling","event.notification.callback.url":"https://cb.example","event.notification.signature.key":"k"}}`,
		ModeWebhook: `{"element":{"key":"woocommercerest"},"configuration":{"store.url":"https://store.example","oauth.api.key":"ck_x","oauth.api.secret":"cs_x","event.notification.enabled":true,"event.vendor.type":"webhook","event.notification.callback.url":"https://cb.example","event.notification.signature.key":"k"}}`,
	}
	for mode, body := range samples {
		parsed, err := ceimport.Parse([]byte(body))
		if err != nil {
			return nil, fmt.Errorf("%s sample: %w", mode, err)
		}
		conf, err := parsed.Pipeline(ceimport.PipelineOptions{InputLabel: "sample"})
		if err != nil {
			return nil, err
		}
		vars := parsed.Env()
		vars[ceimport.EnvWebhookSecret] = "sample"
		sb := full.NewStreamBuilder()
		sb.SetEnvVarLookupFunc(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
		if err := sb.SetYAML(string(conf)); err != nil {
			return nil, fmt.Errorf("%s sample pipeline: %w", mode, err)
		}
		if err := sb.WalkComponents(func(w *service.WalkedComponent) error {
			names[w.Name] = true
			return nil
		}); err != nil {
			return nil, err
		}
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	return full.With(list...), nil
}

// bloblangWithEnv is the global Bloblang environment, with only the
// functions in called and with an env() that reads lookup instead of the
// process environment: the shared resources (cloud_elements_signer,
// cloud_elements_envelope, ...) read the instance's signature key and name
// exactly as a YAML pipeline reads its own. Every instance has its own
// function registry; leaving out the functions its pipeline never calls
// keeps it a few entries long. Methods are the global environment's,
// shared.
func bloblangWithEnv(lookup func(string) (string, bool), called map[string]bool) (*bloblang.Environment, error) {
	var without []string
	bloblang.GlobalEnvironment().WalkFunctions(func(name string, _ *bloblang.FunctionView) {
		if name == "env" || !called[name] {
			without = append(without, name)
		}
	})
	env := bloblang.GlobalEnvironment().WithoutFunctions(without...)
	spec := bloblang.NewPluginSpec().
		Impure().
		Description("Returns the value of one of the instance's variables, or `null` when it has none.").
		Param(bloblang.NewStringParam("name").Description("The variable's name.")).
		Param(bloblang.NewBoolParam("no_cache").Description("Look the variable up on every call.").Default(false))
	err := env.RegisterFunctionV2("env", spec, func(args *bloblang.ParsedParams) (bloblang.Function, error) {
		name, err := args.GetString("name")
		if err != nil {
			return nil, err
		}
		return func() (any, error) {
			if v, ok := lookup(name); ok {
				return v, nil
			}
			return nil, nil
		}, nil
	})
	return env, err
}

// functionCall is a Bloblang function call: a name and "(", where the name
// does not follow a "." (a method) or another name character.
var functionCall = regexp.MustCompile(`[a-z_][a-z0-9_]*\(`)

// calledFunctions lists the names a pipeline's YAML calls like Bloblang
// functions (mappings and ${! } interpolations). It may list more (a
// name in a comment or a string) but never fewer: a function it missed
// would fail the build of every instance, which the tests would see.
func calledFunctions(conf []byte) map[string]bool {
	out := map[string]bool{}
	for _, m := range functionCall.FindAllIndex(conf, -1) {
		if m[0] > 0 {
			if c := conf[m[0]-1]; c == '.' || c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
				continue
			}
		}
		out[string(conf[m[0]:m[1]-1])] = true
	}
	return out
}

// discardMux takes the endpoints a stream registers (it has no HTTP server
// of its own: the server's listener serves the API and the receivers).
type discardMux struct{}

func (discardMux) HandleFunc(string, func(http.ResponseWriter, *http.Request)) {}

// ---------------------------------------------------------------------------
// Webhook receiver

// Mount is the instance's wcwebhook.Mounter: its woocommerce_webhook input
// (the project's input as the pipeline configures it: signature checks,
// spool, registration, delete confirmation) opens no listener; while it is
// connected, deliveries to <public-url>/elements/api-v2/events/woocommercerest/<id>
// on the server's listener reach its handler at its path.
func (in *instance) Mount(path string, h http.Handler) (func(), error) {
	in.mu.Lock()
	in.receiver, in.recvPath = h, path
	in.mu.Unlock()
	return func() { in.unmount(h) }, nil
}

func (in *instance) unmount(h http.Handler) {
	in.mu.Lock()
	if in.receiver == h {
		in.receiver = nil
	}
	in.mu.Unlock()
}

// serveDelivery hands a WooCommerce delivery to the instance's input.
func (in *instance) serveDelivery(w http.ResponseWriter, r *http.Request) {
	in.mu.Lock()
	h, path := in.receiver, in.recvPath
	in.mu.Unlock()
	if h == nil {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "receiver not running", http.StatusServiceUnavailable)
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = path, ""
	h.ServeHTTP(w, r2)
}
