package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/testproc"
	"github.com/wooevents/wooevents/tests/wcsim"
)

// readmeBlock is one ```sh block of README.md.
type readmeBlock struct {
	line  int      // 1-based line of the opening fence
	lines []string // commands, backslash continuations joined, comments and blanks dropped
	raw   string   // the block's text as written (dedented)
}

// readmeBlocks returns README.md's shell blocks, and the text that follows
// each (for the expected outputs shown after a command).
func readmeBlocks(t *testing.T) (blocks []readmeBlock, readme string) {
	t.Helper()
	b, err := os.ReadFile(repoPath("README.md"))
	require.NoError(t, err)
	readme = string(b)
	sc := bufio.NewScanner(bytes.NewReader(b))
	var cur *readmeBlock
	indent := ""
	n := 0
	var pending string
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case cur == nil && trimmed == "```sh":
			indent = line[:len(line)-len(trimmed)]
			cur = &readmeBlock{line: n}
		case cur != nil && trimmed == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			l := strings.TrimPrefix(line, indent)
			cur.raw += l + "\n"
			if strings.HasSuffix(l, "\\") {
				pending += strings.TrimSuffix(l, "\\")
				continue
			}
			l = pending + l
			pending = ""
			if s := strings.TrimSpace(l); s != "" && !strings.HasPrefix(s, "#") {
				cur.lines = append(cur.lines, s)
			}
		}
	}
	require.NoError(t, sc.Err())
	return blocks, readme
}

// workdir is a directory laid out like the repository for the README's
// relative paths: bin/wooevents (the binary under test), resources/, and a
// config/ of its own holding links to the shipped pipelines (so a command
// writing config/x.yaml writes here). ./data goes here too.
func workdir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	require.NoError(t, os.Symlink(binPath, filepath.Join(dir, "bin", "wooevents")))
	require.NoError(t, os.Symlink(repoPath("resources"), filepath.Join(dir, "resources")))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "config"), 0o755))
	files, err := filepath.Glob(repoPath("config/*.yaml"))
	require.NoError(t, err)
	for _, f := range files {
		require.NoError(t, os.Symlink(f, filepath.Join(dir, "config", filepath.Base(f))))
	}
	return dir
}

// sh runs one README line with bash in dir, as typed.
func sh(t *testing.T, dir string, env map[string]string, line string) (stdout, stderr string, err error) {
	t.Helper()
	return testproc.Run(t, "bash", dir, env, "-c", "set -o pipefail; "+line)
}

// startLine starts a long-running README line (a pipeline) in dir: bash
// execs the binary, so the process is wooevents itself and stops on SIGTERM.
func startLine(t *testing.T, dir string, env map[string]string, line string) *proc {
	t.Helper()
	i := strings.Index(line, "bin/wooevents ")
	require.GreaterOrEqual(t, i, 0, line)
	httpAddr := freeAddr(t)
	all := map[string]string{"WOOEVENTS_HTTP_ADDRESS": httpAddr}
	for k, v := range env {
		all[k] = v
	}
	return &proc{Proc: testproc.Start(t, "bash", dir, all, "-c", line[:i]+"exec "+line[i:]), httpAddr: httpAddr}
}

var makeLine = regexp.MustCompile(`^(?:SIM_ADDR=\S+ )?make \w+(?:\s+#.*)?$`)

var pipelineRun = regexp.MustCompile(`^(?:[A-Z_]+=\S+ )*bin/wooevents -c \./config/([a-z_]+)\.yaml$`)

// Every command README.md shows is run here, as typed (in a copy of the
// repository's layout, with the ports and the store of the examples replaced
// by free ports and the simulator): the quick start, the simulator, the
// doctor, each shipped pipeline, lint and test, the command-line examples and
// the Cloud Elements import. A block no case recognises fails the test, so
// the README cannot show a command nothing runs. Each pipeline's header must
// show the same command as the README.
func TestReadmeCommands(t *testing.T) {
	blocks, readme := readmeBlocks(t)
	require.NotEmpty(t, blocks)
	handled := map[int]bool{}
	handle := func(b readmeBlock) { handled[b.line] = true }

	makefile, err := os.ReadFile(repoPath("Makefile"))
	require.NoError(t, err)
	pipelines := map[string]string{} // config name -> README command

	for _, b := range blocks {
		b := b
		switch {
		case allMatch(b.lines, makeLine):
			// make targets: each must exist (make run/test/demo are run by CI and TestDemo*).
			for _, l := range b.lines {
				target := regexp.MustCompile(`make (\w+)`).FindStringSubmatch(l)
				require.NotNil(t, target, l)
				assert.Regexp(t, `(?m)^`+target[1]+`:`, string(makefile), "README line %d: no make target %s", b.line, target[1])
			}
			handle(b)

		case strings.Contains(b.raw, "X-WC-Webhook-Signature"):
			t.Run("quick start", func(t *testing.T) { readmeQuickStart(t, b, readme) })
			handle(b)

		case len(b.lines) == 1 && strings.HasPrefix(b.lines[0], "go run ./tests/wcsim/cmd/wcsim"):
			next := nextBlock(blocks, b)
			require.NotNil(t, next, "the simulator block is followed by the block that uses it")
			t.Run("simulator", func(t *testing.T) { readmeSimulator(t, b, *next, readme) })
			handle(b)
			handle(*next)

		case strings.Contains(b.raw, "ck_your_key"):
			t.Run("doctor on your store", func(t *testing.T) { readmeDoctor(t, b) })
			handle(b)

		case allMatch(b.lines, pipelineRun):
			for _, l := range b.lines {
				name := pipelineRun.FindStringSubmatch(l)[1]
				pipelines[name] = l
				t.Run("pipeline "+name, func(t *testing.T) { readmePipeline(t, name, l) })
			}
			handle(b)

		case allMatch(b.lines, regexp.MustCompile(`^bin/wooevents (lint|test) `)):
			for _, l := range b.lines {
				dir := workdir(t)
				out, errOut, err := sh(t, dir, nil, l)
				require.NoError(t, err, "README line %d: %s\n%s%s", b.line, l, out, errOut)
			}
			handle(b)

		case strings.Contains(b.raw, "bin/wooevents --help"):
			t.Run("command line", func(t *testing.T) { readmeCommandLine(t, b) })
			handle(b)

		case strings.Contains(b.raw, "bin/wooevents serve"):
			next := nextBlock(blocks, b)
			require.NotNil(t, next, "the serve block is followed by the curl that uses it")
			t.Run("serve", func(t *testing.T) { readmeServe(t, b, *next) })
			handle(b)
			handle(*next)

		case strings.Contains(b.raw, "import-cloud-elements"):
			t.Run("cloud elements", func(t *testing.T) {
				dir := workdir(t)
				raw, err := os.ReadFile(repoPath("tests/fixtures/cloud-elements/polling-instance.json"))
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(dir, "my-instance.json"), raw, 0o600))
				for _, l := range b.lines {
					out, errOut, err := sh(t, dir, nil, l)
					require.NoError(t, err, "%s\n%s%s", l, out, errOut)
				}
				conf, err := os.ReadFile(filepath.Join(dir, "config", "my_instance.yaml"))
				require.NoError(t, err)
				assert.Contains(t, string(conf), "woocommerce_poll:")
			})
			handle(b)
		}
	}
	for _, b := range blocks {
		assert.True(t, handled[b.line], "README.md line %d: a command block no test runs:\n%s", b.line, b.raw)
	}

	// Every shipped pipeline is in the README, with the command its own header shows.
	files, err := filepath.Glob(repoPath("config/*.yaml"))
	require.NoError(t, err)
	header := regexp.MustCompile(`(?m)^#   (bin/wooevents -c \./config/[a-z_]+\.yaml)$`)
	for _, f := range files {
		if strings.HasSuffix(f, "_benthos_test.yaml") {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		m := header.FindSubmatch(raw)
		require.NotNil(t, m, "config/%s.yaml: no `#   bin/wooevents -c ./config/%s.yaml` line in its header", name, name)
		assert.Equal(t, "bin/wooevents -c ./config/"+name+".yaml", string(m[1]))
		assert.Contains(t, pipelines, name, "README.md shows no command for config/%s.yaml", name)
		if cmd, ok := pipelines[name]; ok {
			assert.Equal(t, string(m[1]), cmd, "config/%s.yaml: its header and the README show different commands", name)
		}
		test, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + "_benthos_test.yaml")
		require.NoError(t, err, "config/%s.yaml has no _benthos_test.yaml twin", name)
		assert.Contains(t, string(test), "#   bin/wooevents test ./config/...", "config/%s_benthos_test.yaml: its header shows another test command", name)
	}
}

func allMatch(lines []string, re *regexp.Regexp) bool {
	for _, l := range lines {
		if !re.MatchString(l) {
			return false
		}
	}
	return len(lines) > 0
}

func nextBlock(blocks []readmeBlock, b readmeBlock) *readmeBlock {
	for i := range blocks {
		if blocks[i].line == b.line && i+1 < len(blocks) {
			return &blocks[i+1]
		}
	}
	return nil
}

// jsonAfter returns the first ```json block after the given README line.
func jsonAfter(t *testing.T, readme string, line int) map[string]any {
	t.Helper()
	lines := strings.Split(readme, "\n")
	for i := line; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) == "```json" {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[i+1]), &m), lines[i+1])
			return m
		}
	}
	t.Fatalf("no json block after README line %d", line)
	return nil
}

// The quick start: make run's pipeline, the signed delivery exactly as the
// README sends it (to a free port instead of 8080), and the event it shows.
func readmeQuickStart(t *testing.T, b readmeBlock, readme string) {
	dir := workdir(t)
	addr := freeAddr(t)
	p := startLine(t, dir, map[string]string{"WOOEVENTS_WEBHOOK_ADDRESS": addr}, "bin/wooevents -c ./config/default.yaml")
	p.waitReady(t)
	script := strings.ReplaceAll(b.raw, "127.0.0.1:8080", addr)
	var out string
	p.Eventually(t, func() bool {
		o, _, err := testproc.Run(t, "bash", dir, nil, "-c", "set -e\n"+script)
		out = o
		return err == nil && strings.Count(o, "\n") >= 2
	}, func() string { return "the quick start did not write an event: " + out })
	first, event, _ := strings.Cut(out, "\n")
	assert.Equal(t, "200", first, "the delivery is answered 200")
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(event)), &got), event)
	want := jsonAfter(t, readme, b.line)
	for _, m := range []map[string]any{got, want} {
		delete(m, "received_at")
	}
	assert.Equal(t, want, got, "the event the README shows is the one written")
}

// The simulator as the README starts it, its printed keys equal to the ones
// the README exports, and the next block's doctor and pipeline against it; the
// doctor's sample output in the README is what it prints.
func readmeSimulator(t *testing.T, simBlock, useBlock readmeBlock, readme string) {
	addr := freeAddr(t)
	// `go run` would leave the simulator running when killed: build it, and
	// run the binary with the README's arguments.
	args, ok := strings.CutPrefix(simBlock.lines[0], "go run ./tests/wcsim/cmd/wcsim")
	require.True(t, ok)
	simBin := filepath.Join(t.TempDir(), "wcsim")
	build := exec.Command("go", "build", "-o", simBin, "./tests/wcsim/cmd/wcsim")
	build.Dir = testproc.RepoRoot()
	built, err := build.CombinedOutput()
	require.NoError(t, err, "%s", built)
	cmd := exec.Command("bash", "-c", "exec "+simBin+strings.ReplaceAll(args, "127.0.0.1:8480", addr))
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var logs testproc.Buffer
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	printed := map[string]string{}
	sc := bufio.NewScanner(stdout)
	deadline := time.After(2 * time.Minute) // go run may compile
	lines := make(chan string)
	go func() {
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for len(printed) < 3 {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "the simulator stopped: %s", logs.String())
			if u, ok := strings.CutPrefix(l, "url="); ok {
				printed["url"] = u
			}
			if strings.HasPrefix(l, "key permissions=read_write ") {
				for _, f := range strings.Fields(l) {
					k, v, _ := strings.Cut(f, "=")
					printed[k] = v
				}
			}
		case <-deadline:
			t.Fatalf("the simulator printed no URL and keys: %s", logs.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	require.Equal(t, "http://"+addr, printed["url"])

	env := map[string]string{}
	var doctorLine, runLine string
	for _, l := range useBlock.lines {
		switch {
		case strings.HasPrefix(l, "export "):
			k, v, _ := strings.Cut(strings.TrimPrefix(l, "export "), "=")
			env[k] = v
		case strings.HasPrefix(l, "bin/wooevents doctor"):
			doctorLine = l
		default:
			runLine = l
		}
	}
	assert.Equal(t, printed["consumer_key"], env["WOOEVENTS_CONSUMER_KEY"], "the README exports the key the simulator prints")
	assert.Equal(t, printed["consumer_secret"], env["WOOEVENTS_CONSUMER_SECRET"])
	assert.Equal(t, "http://127.0.0.1:8480", env["WOOEVENTS_STORE_URL"])
	env["WOOEVENTS_STORE_URL"] = printed["url"]
	require.NotEmpty(t, doctorLine)
	require.NotEmpty(t, runLine)

	dir := workdir(t)
	out, errOut, err := sh(t, dir, env, doctorLine)
	require.NoError(t, err, "%s\n%s%s", doctorLine, out, errOut)
	assert.Contains(t, out, "0 fail")
	// The sample the README shows (timings and the port aside) is this output.
	norm := func(s string) string {
		s = strings.ReplaceAll(s, printed["url"], "http://127.0.0.1:8480")
		return regexp.MustCompile(`in [0-9.]+m?s;`).ReplaceAllString(s, "in Xms;")
	}
	sample := regexp.MustCompile("(?s)```text\n(.*?)```").FindStringSubmatch(readme) // the first text block
	require.NotNil(t, sample, "README: the doctor's sample output")
	for _, l := range strings.Split(sample[1], "\n") {
		l = strings.TrimPrefix(l, "   ")
		if strings.TrimSpace(l) == "" || strings.TrimSpace(l) == "..." {
			continue
		}
		assert.Contains(t, norm(out), norm(l), "README's doctor sample line is not what the doctor prints")
	}

	p := startLine(t, dir, merge(env, map[string]string{"WOOEVENTS_POLL_INTERVAL": "500ms"}), runLine)
	p.waitReady(t)
	glob := filepath.Join(dir, "data", "poll", "*.jsonl")
	p.Eventually(t, func() bool { return countLines(glob) >= 23 }, func() string {
		return fmt.Sprintf("%d events written, want the 20 orders and 3 customers the simulator was seeded with", countLines(glob))
	})
}

// "Point it at your store": the exports with the simulator's URL and keys in
// place of the placeholders, then the doctor as typed.
func readmeDoctor(t *testing.T, b readmeBlock) {
	sim := startSim(t)
	sim.Seed(wcsim.Orders, 3)
	env := map[string]string{}
	var cmds []string
	for _, l := range b.lines {
		if rest, ok := strings.CutPrefix(l, "export "); ok {
			k, v, _ := strings.Cut(rest, "=")
			env[k] = v
			continue
		}
		cmds = append(cmds, l)
	}
	assert.Equal(t, "https://shop.example.com", env["WOOEVENTS_STORE_URL"])
	env["WOOEVENTS_STORE_URL"] = sim.URL()
	env["WOOEVENTS_CONSUMER_KEY"] = wcsim.DefaultReadOnlyConsumerKey
	env["WOOEVENTS_CONSUMER_SECRET"] = wcsim.DefaultReadOnlyConsumerSecret
	require.Len(t, cmds, 1)
	out, errOut, err := sh(t, workdir(t), env, cmds[0])
	require.NoError(t, err, "%s\n%s%s", cmds[0], out, errOut)
	assert.Contains(t, out, "ok    permission       read: enough for polling")
	assert.Contains(t, out, "orders 3")
}

// One shipped pipeline, started with the README's command as typed, with what
// it needs around it, until it is ready (and, where cheap, has done its job).
func readmePipeline(t *testing.T, name, line string) {
	dir := workdir(t)
	switch name {
	case "default", "webhook_to_callback", "webhook_to_kafka":
		addr := freeAddr(t)
		env := map[string]string{"WOOEVENTS_WEBHOOK_ADDRESS": addr, "WOOEVENTS_WEBHOOK_SECRET": captureSecret}
		var cs *callbackServer
		switch name {
		case "webhook_to_callback":
			cs = newCallbackServer(t, "", "")
			env["WOOEVENTS_CALLBACK_URL"] = cs.URL()
		case "webhook_to_kafka":
			env["WOOEVENTS_KAFKA_BROKERS"] = strings.Join(startKafka(t).ListenAddrs(), ",")
		}
		p := startLine(t, dir, env, line)
		p.waitReady(t)
		replay(t, "http://"+addr+"/webhooks/woocommerce", webhookCaptures(t)[:3])
		if cs != nil {
			p.Eventually(t, func() bool { return len(cs.delivered()) >= 1 }, func() string { return fmt.Sprintf("rejected %v", cs.rejections()) })
		}
		if name == "default" {
			glob := filepath.Join(dir, "data", "events", "*.jsonl")
			p.Eventually(t, func() bool { return countLines(glob) >= 1 }, func() string { return "no event written" })
		}
	case "poll_to_file", "poll_to_callback", "hybrid_to_kafka":
		sim := startSim(t)
		sim.Seed(wcsim.Orders, 2)
		env := merge(simEnv(sim), map[string]string{"WOOEVENTS_POLL_INTERVAL": "500ms", "WOOEVENTS_POLL_START_FROM": "beginning"})
		var cs *callbackServer
		switch name {
		case "poll_to_callback":
			cs = newCallbackServer(t, "", "")
			env["WOOEVENTS_CALLBACK_URL"] = cs.URL()
		case "hybrid_to_kafka":
			env["WOOEVENTS_KAFKA_BROKERS"] = strings.Join(startKafka(t).ListenAddrs(), ",")
			env["WOOEVENTS_WEBHOOK_ADDRESS"] = freeAddr(t)
		}
		p := startLine(t, dir, env, line)
		p.waitReady(t)
		switch name {
		case "poll_to_file":
			glob := filepath.Join(dir, "data", "poll", "*.jsonl")
			p.Eventually(t, func() bool { return countLines(glob) >= 2 }, func() string { return "no events written" })
		case "poll_to_callback":
			p.Eventually(t, func() bool { return len(cs.delivered()) >= 2 }, func() string { return fmt.Sprintf("rejected %v", cs.rejections()) })
		}
	case "redrive_dlq":
		cs := newCallbackServer(t, "", "")
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "data", "dead-letter"), 0o755))
		record := `{"failed_at":"2026-01-02T03:04:05.000Z","reason":"callback delivery failed: attempts=8 status=503 permanent=false: x","attempts":8,"status_code":503,"event_id":"fedac7400c7528e389f17c76359c9457","metadata":{"woocommerce_event_id":"fedac7400c7528e389f17c76359c9457"},"body":{"message":{"eventId":"fedac7400c7528e389f17c76359c9457","events":[{"eventType":"UPDATED"}]}}}` + "\n"
		require.NoError(t, os.WriteFile(filepath.Join(dir, "data", "dead-letter", "callback-2026-01-02.jsonl"), []byte(record), 0o600))
		p := startLine(t, dir, map[string]string{"WOOEVENTS_CALLBACK_URL": cs.URL()}, line)
		p.waitExit(t, time.Minute)
		require.Len(t, cs.delivered(), 1, "rejected %v", cs.rejections())
		assert.Equal(t, "fedac7400c7528e389f17c76359c9457", cs.delivered()[0].n.Message.EventID)
	default:
		t.Fatalf("README runs config/%s.yaml, which this test does not know how to feed: add it here", name)
	}
}

// The serve example: the server as typed (on a free port), then the curl
// that lists its instances with the same credentials: an empty list; and
// without them a 401.
func readmeServe(t *testing.T, b, curl readmeBlock) {
	dir := workdir(t)
	addr := freeAddr(t)
	script := strings.ReplaceAll(strings.Join(b.lines, "; "), "127.0.0.1:8081", addr)
	// serve's own metrics listener defaults to 127.0.0.1:4195, which
	// another test's process may hold: a free port through its variable.
	p := startLine(t, dir, map[string]string{"WOOEVENTS_METRICS_ADDRESS": freeAddr(t)}, script)
	get := strings.ReplaceAll(curl.lines[0], "127.0.0.1:8081", addr)
	var out string
	p.Eventually(t, func() bool {
		o, _, err := sh(t, dir, nil, get)
		out = o
		return err == nil && strings.TrimSpace(o) == "[]"
	}, func() string { return "the README's curl did not list an empty set of instances: " + out })
	res, err := http.Get("http://" + addr + "/elements/api-v2/instances")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "without the credentials")
	_, err = os.Stat(filepath.Join(dir, "data", "serve", "instances.db"))
	assert.NoError(t, err, "the registry is under --data-dir")
}

// The command-line examples, as typed.
func readmeCommandLine(t *testing.T, b readmeBlock) {
	dir := workdir(t)
	outputs := map[string]string{}
	for _, l := range b.lines {
		out, errOut, err := sh(t, dir, nil, l)
		require.NoError(t, err, "%s\n%s%s", l, out, errOut)
		outputs[l] = out
	}
	for l, out := range outputs {
		switch {
		case strings.Contains(l, "--help"):
			assert.Contains(t, out, "wooevents doctor --store-url")
		case strings.Contains(l, "list inputs"):
			assert.Contains(t, out, "woocommerce_poll")
		case strings.Contains(l, "blobl"):
			assert.Equal(t, "true\n", out, "blobl prints the result of a single line")
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "pipeline.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(raw), "woocommerce_webhook:")
}

// Every relative link of README.md and docs/*.md points at a file that
// exists (anchors are not checked).
func TestDocLinks(t *testing.T) {
	files, err := filepath.Glob(repoPath("docs/*.md"))
	require.NoError(t, err)
	files = append(files, repoPath("README.md"))
	link := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	checked := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range link.FindAllStringSubmatch(string(raw), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			checked++
			_, err := os.Stat(filepath.Join(filepath.Dir(f), target))
			assert.NoError(t, err, "%s links to %s", strings.TrimPrefix(f, testproc.RepoRoot()+"/"), target)
		}
	}
	assert.Greater(t, checked, 20)
}
