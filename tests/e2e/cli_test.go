package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/wooevents/wooevents/tests/testproc"
	"github.com/wooevents/wooevents/tests/wcsim"
)

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// The help is wooevents', with examples that work.
func TestHelpIsWooevents(t *testing.T) {
	out, _, err := runWooevents(t, t.TempDir(), nil, "--help")
	require.NoError(t, err)
	assert.Contains(t, out, "wooevents - WooCommerce store changes as one stream of normalized events")
	assert.Contains(t, out, "wooevents create woocommerce_webhook//file > pipeline.yaml")
	assert.Contains(t, out, "wooevents doctor --store-url")
	assert.NotContains(t, out, "kafka//file", "benthos' example names an input wooevents does not have")
	assert.NotContains(t, out, "mundane")
	assert.Contains(t, out, "doctor")
	// The example it shows works.
	dir := t.TempDir()
	conf, _, err := runWooevents(t, dir, nil, "create", "woocommerce_webhook//file")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pipeline.yaml"), []byte(conf), 0o600))
	_, lint, err := runWooevents(t, dir, nil, "lint", "pipeline.yaml")
	require.NoError(t, err, lint)
}

// Without an http section the HTTP server binds 127.0.0.1:4195 under
// /wooevents, and logs say @service=wooevents; a config's own values win.
func TestServiceDefaults(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "gen.yaml")
	require.NoError(t, os.WriteFile(conf, []byte("input:\n  generate: { count: 1, interval: \"\", mapping: 'root = {}' }\noutput:\n  drop: {}\n"), 0o600))
	out, _, err := runWooevents(t, dir, nil, "echo", conf)
	require.NoError(t, err)
	var echoed struct {
		HTTP struct {
			Address  string `yaml:"address"`
			RootPath string `yaml:"root_path"`
		} `yaml:"http"`
		Logger struct {
			StaticFields map[string]string `yaml:"static_fields"`
		} `yaml:"logger"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(out), &echoed), out)
	assert.Equal(t, "127.0.0.1:4195", echoed.HTTP.Address, "the HTTP server stays on loopback unless the config says otherwise")
	assert.Equal(t, "/wooevents", echoed.HTTP.RootPath)
	assert.Equal(t, map[string]string{"@service": "wooevents"}, echoed.Logger.StaticFields)

	// Running: the config's address, the /wooevents prefix, @service=wooevents.
	addr := freeAddr(t)
	require.NoError(t, os.WriteFile(conf, []byte("http:\n  address: "+addr+"\ninput:\n  generate: { interval: 1h, mapping: 'root = {}' }\noutput:\n  drop: {}\n"), 0o600))
	p := testproc.Start(t, binPath, dir, nil, "-c", conf)
	p.WaitReady(t, addr)
	res, err := http.Get("http://" + addr + "/wooevents/ping")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, "pong", string(body))
	res, err = http.Get("http://" + addr + "/benthos/ping")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusNotFound, res.StatusCode, "no /benthos root")
	p.Stop(t)
	assert.Contains(t, p.Out.String(), "@service=wooevents")
	assert.NotContains(t, p.Out.String(), "@service=benthos")
}

// blobl prints the result of a single input line (benthos v4.60.0's own
// command often printed nothing), and of every line of a longer input, in
// order; a failing line is reported with its number and the exit code is 1.
func TestBloblSingleLine(t *testing.T) {
	for i := 0; i < 20; i++ { // upstream lost the line more often than not
		cmd := exec.Command(binPath, "blobl", "root.total = this.total.number() * 2")
		cmd.Stdin = strings.NewReader(`{"total":"21.00"}` + "\n")
		out, err := cmd.Output()
		require.NoError(t, err)
		require.Equal(t, `{"total":42}`+"\n", string(out), "run %d", i)
	}
	cmd := exec.Command(binPath, "blobl", "root = this.n")
	cmd.Stdin = strings.NewReader("{\"n\":1}\nnot json\n{\"n\":3}\n")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	assert.Equal(t, 1, exitCode(err))
	assert.Equal(t, "1\n3\n", string(out))
	assert.Contains(t, stderr.String(), "line 2:")
}

// lint does not fail merely because a ${VAR} without default is unset in
// the linting shell; --env-var-check restores benthos' check; real lint
// errors still fail.
func TestLintUnsetVariable(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "p.yaml")
	require.NoError(t, os.WriteFile(conf, []byte(`
input:
  woocommerce_poll:
    store_url: https://shop.example.com
    consumer_key: ${WOOEVENTS_TEST_UNSET_KEY}
    consumer_secret: ${WOOEVENTS_TEST_UNSET_SECRET}
output:
  drop: {}
`), 0o600))
	_, stderr, err := runWooevents(t, dir, nil, "lint", conf)
	require.NoError(t, err, stderr)
	assert.Contains(t, stderr, "WOOEVENTS_TEST_UNSET_KEY, WOOEVENTS_TEST_UNSET_SECRET")
	assert.Contains(t, stderr, "note")

	_, stderr, err = runWooevents(t, dir, nil, "lint", "--env-var-check", conf)
	assert.Equal(t, 1, exitCode(err))
	assert.Contains(t, stderr, "required environment variables were not set")

	_, stderr, err = runWooevents(t, dir, nil, "lint", "--skip-env-var-check", conf)
	require.NoError(t, err)
	assert.NotContains(t, stderr, "WOOEVENTS_TEST_UNSET_KEY")

	_, _, err = runWooevents(t, dir, map[string]string{"WOOEVENTS_TEST_UNSET_KEY": "ck", "WOOEVENTS_TEST_UNSET_SECRET": "cs"}, "lint", "--env-var-check", conf)
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(conf, []byte("input:\n  woocommerce_poll:\n    store_url: ${X}\n    no_such_field: 1\noutput:\n  drop: {}\n"), 0o600))
	_, stderr, err = runWooevents(t, dir, nil, "lint", conf)
	assert.Equal(t, 1, exitCode(err))
	assert.Contains(t, stderr, "field no_such_field not recognised")
}

// Every series a shipped poll pipeline exports has a HELP text of its own
// (not the generic "Benthos counter x").
func TestMetricsHaveHelp(t *testing.T) {
	sim := startSim(t)
	sim.Seed(wcsim.Orders, 3)
	dir := t.TempDir()
	p := startWooevents(t, dir, merge(simEnv(sim), map[string]string{
		"WOOEVENTS_POLL_INTERVAL":   "500ms",
		"WOOEVENTS_POLL_START_FROM": "beginning",
	}), "-c", repoPath("config/poll_to_file.yaml"))
	p.waitReady(t)
	var fams map[string]*dto.MetricFamily
	p.Eventually(t, func() bool {
		res, err := http.Get("http://" + p.httpAddr + "/metrics")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		parser := expfmt.NewTextParser(model.LegacyValidation)
		fams, err = parser.TextToMetricFamilies(res.Body)
		return err == nil && fams["woocommerce_events_total"] != nil && fams["output_sent"] != nil
	}, func() string { return "no woocommerce_events_total on /metrics" })
	for name, f := range fams {
		assert.NotEmpty(t, f.GetHelp(), name)
		assert.False(t, strings.HasPrefix(f.GetHelp(), "Benthos "), "%s has only the generic HELP %q", name, f.GetHelp())
	}
	assert.Contains(t, fams["woocommerce_events_total"].GetHelp(), "emitted, by resource and action")
}

// tests/demo.sh stops with a clear message when SIM_ADDR is taken, instead of
// polling whatever listens there.
func TestDemoPortTaken(t *testing.T) {
	srv := http.Server{Handler: http.NotFoundHandler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	cmd := exec.Command("bash", repoPath("tests/demo.sh"))
	cmd.Env = append(os.Environ(), "SIM_ADDR="+ln.Addr().String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.CombinedOutput()
	assert.Equal(t, 1, exitCode(err), "%s", out)
	assert.Contains(t, string(out), "make demo: the simulator could not listen on "+ln.Addr().String())
	assert.Contains(t, string(out), "address already in use")
	assert.Contains(t, string(out), "SIM_ADDR")
}

// The doctor, as a command: flags and WOOEVENTS_* variables, text and JSON,
// the exit code, -c, and no key or secret anywhere in its output.
func TestDoctorCommand(t *testing.T) {
	sim := startSim(t)
	sim.Seed(wcsim.Orders, 4)
	dir := t.TempDir()
	env := map[string]string{
		"WOOEVENTS_CONSUMER_KEY":    wcsim.DefaultConsumerKey,
		"WOOEVENTS_CONSUMER_SECRET": wcsim.DefaultConsumerSecret,
	}
	secrets := []string{wcsim.DefaultConsumerKey, wcsim.DefaultConsumerSecret, wcsim.DefaultReadOnlyConsumerKey, wcsim.DefaultReadOnlyConsumerSecret}
	noSecrets := func(outs ...string) {
		t.Helper()
		for _, o := range outs {
			for _, s := range secrets {
				assert.NotContains(t, o, s)
			}
		}
	}

	out, stderr, err := runWooevents(t, dir, env, "doctor", "--store-url", sim.URL())
	require.NoError(t, err, "%s%s", out, stderr)
	assert.Contains(t, out, "store "+sim.URL())
	assert.Regexp(t, `(?m)^  ok    auth +oauth1 works`, out)
	assert.Contains(t, out, "orders 4")
	assert.Regexp(t, `(?m)^\d+ ok, 0 warn, 0 fail$`, out)
	noSecrets(out, stderr)

	// JSON, with the keys as flags.
	out, stderr, err = runWooevents(t, dir, nil, "doctor", "--store-url", sim.URL(), "--format", "json",
		"--consumer-key", wcsim.DefaultConsumerKey, "--consumer-secret", wcsim.DefaultConsumerSecret)
	require.NoError(t, err, stderr)
	var rep struct {
		Stores []struct {
			Store  string `json:"store"`
			Checks []struct {
				Check, Status, Found, Fix string
			} `json:"checks"`
		} `json:"stores"`
		OK, Warn, Fail int
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	require.Len(t, rep.Stores, 1)
	assert.Equal(t, sim.URL(), rep.Stores[0].Store)
	assert.Zero(t, rep.Fail)
	assert.Greater(t, rep.OK, 10)
	noSecrets(out, stderr)

	// A failing check exits 1: a read-only key where webhooks are registered on a port WordPress refuses.
	out, stderr, err = runWooevents(t, dir, map[string]string{
		"WOOEVENTS_STORE_URL":       sim.URL(),
		"WOOEVENTS_CONSUMER_KEY":    wcsim.DefaultReadOnlyConsumerKey,
		"WOOEVENTS_CONSUMER_SECRET": wcsim.DefaultReadOnlyConsumerSecret,
	}, "doctor", "--delivery-url", "https://hooks.example.com:9000/webhooks/woocommerce")
	assert.Equal(t, 1, exitCode(err), "%s%s", out, stderr)
	assert.Regexp(t, `(?m)^  fail  delivery-url +https://hooks.example.com:9000/webhooks/woocommerce is on port 9000`, out)
	assert.Regexp(t, `(?m)^  fail  topics +no active webhook for: order.created`, out)
	noSecrets(out, stderr)

	// A wrong secret: the secret is not printed even though it was sent.
	wrong := "cs_this_is_a_wrong_secret_000000000000000"
	out, stderr, err = runWooevents(t, dir, nil, "doctor", "--store-url", sim.URL(), "--consumer-key", wcsim.DefaultConsumerKey, "--consumer-secret", wrong)
	assert.Equal(t, 1, exitCode(err))
	assert.Contains(t, out, "fail  auth")
	assert.NotContains(t, out+stderr, wrong)
	noSecrets(out, stderr)

	// -c: the pipeline's store, keys and resources, from the environment.
	out, stderr, err = runWooevents(t, dir, merge(env, map[string]string{"WOOEVENTS_STORE_URL": sim.URL()}),
		"doctor", "-c", repoPath("config/poll_to_callback.yaml"))
	require.NoError(t, err, "%s%s", out, stderr)
	assert.Contains(t, out, "named by "+repoPath("config/poll_to_callback.yaml")+`: woocommerce_poll input "poll" (root.input)`)
	assert.Contains(t, out, "contacts 0, discounts 0, orders 4, products 0")
	noSecrets(out, stderr)

	// An https store with a certificate this machine does not trust: a fail,
	// or with --tls-skip-verify a warning (and Basic auth works).
	tlsSim := wcsim.New(wcsim.Options{TLS: true})
	require.NoError(t, tlsSim.Start())
	t.Cleanup(tlsSim.Close)
	out, _, err = runWooevents(t, dir, env, "doctor", "--store-url", tlsSim.URL())
	assert.Equal(t, 1, exitCode(err))
	assert.Regexp(t, `(?m)^  fail  tls +certificate problem`, out)
	out, stderr, err = runWooevents(t, dir, env, "doctor", "--store-url", tlsSim.URL(), "--tls-skip-verify")
	require.NoError(t, err, "%s%s", out, stderr)
	assert.Regexp(t, `(?m)^  warn  tls +certificate for 127.0.0.1 valid until .*not verified`, out)
	assert.Regexp(t, `(?m)^  ok    auth +basic works; query works; oauth1 works; using basic`, out)
	noSecrets(out, stderr)

	// Usage errors exit 2.
	_, stderr, err = runWooevents(t, dir, nil, "doctor")
	assert.Equal(t, 2, exitCode(err))
	assert.Contains(t, stderr, "usage: wooevents doctor --store-url URL")
	_, _, err = runWooevents(t, dir, nil, "doctor", "-c", filepath.Join(dir, "missing.yaml"))
	assert.Equal(t, 2, exitCode(err))
	for _, bad := range [][]string{{"--interval", "0"}, {"--interval", "-5s"}, {"--scan-interval", "-1m"}, {"--page-size", "101"}} {
		_, stderr, err = runWooevents(t, dir, env, append([]string{"doctor", "--store-url", sim.URL()}, bad...)...)
		assert.Equal(t, 2, exitCode(err), "%v", bad)
		assert.Contains(t, stderr, "doctor: "+bad[0]+" must", "%v", bad)
	}
}

// deploy/wooevents.service passes systemd-analyze verify: the unit as
// shipped, with only ExecStart's binary pointed at the one under test.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed here: deploy/wooevents.service not verified")
	}
	raw, err := os.ReadFile(repoPath("deploy/wooevents.service"))
	require.NoError(t, err)
	unit := string(raw)
	for _, want := range []string{"StateDirectory=wooevents", "Environment=WOOEVENTS_DATA_DIR=/var/lib/wooevents",
		"Restart=on-failure", "KillSignal=SIGTERM", "TimeoutStopSec=", "ExecStart=/usr/local/bin/wooevents -c /etc/wooevents/pipeline.yaml"} {
		assert.Contains(t, unit, want)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "wooevents.service")
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(unit, "ExecStart=/usr/local/bin/wooevents", "ExecStart="+binPath, 1)), 0o644))
	cmd := exec.Command(analyze, "verify", path)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	// verify exits 0 on unknown keys and bad values too: it must print nothing about the unit.
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		assert.NotContains(t, sc.Text(), "wooevents.service", "systemd-analyze verify: %s", sc.Text())
	}

	// The shipped environment file sets what the unit's pipelines need, and nothing secret.
	env, err := os.ReadFile(repoPath("deploy/wooevents.env.example"))
	require.NoError(t, err)
	assert.Contains(t, string(env), "WOOEVENTS_CONSUMER_KEY=\n")
	assert.Contains(t, string(env), "WOOEVENTS_CONSUMER_SECRET=\n")
}
