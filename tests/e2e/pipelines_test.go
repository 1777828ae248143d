package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// resourceKinds are the resource sections of a config.
var resourceKinds = []string{"cache_resources", "processor_resources", "output_resources", "input_resources", "rate_limit_resources"}

// labelledResources returns kind/label -> definition of every resource of a
// config file.
func labelledResources(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &doc), path)
	out := map[string]any{}
	for _, kind := range resourceKinds {
		list, _ := doc[kind].([]any)
		for _, r := range list {
			m, _ := r.(map[string]any)
			label, _ := m["label"].(string)
			require.NotEmpty(t, label, "%s: a %s entry without a label", path, kind)
			out[kind+"/"+label] = m
		}
	}
	return out
}

// Each shipped pipeline carries the resources it uses (so that it runs with
// `wooevents -c` alone) as copies of resources/*.yaml: a copy that differs
// from its original fails here. Change the original, then copy it over.
func TestPipelinesCarryTheShippedResources(t *testing.T) {
	originals := map[string]any{}
	origin := map[string]string{}
	files, err := filepath.Glob(repoPath("resources/*.yaml"))
	require.NoError(t, err)
	for _, f := range files {
		if strings.HasSuffix(f, "_benthos_test.yaml") {
			continue
		}
		for k, v := range labelledResources(t, f) {
			require.NotContains(t, originals, k, "%s defined twice in resources/", k)
			originals[k], origin[k] = v, filepath.Base(f)
		}
	}
	require.Contains(t, originals, "processor_resources/cloud_elements_envelope")

	configs, err := filepath.Glob(repoPath("config/*.yaml"))
	require.NoError(t, err)
	copies := 0
	for _, f := range configs {
		if strings.HasSuffix(f, "_benthos_test.yaml") {
			continue
		}
		for k, v := range labelledResources(t, f) {
			want, shipped := originals[k]
			if !shipped {
				continue // the pipeline's own resource
			}
			copies++
			assert.Equal(t, want, v, "config/%s: %s differs from its original in resources/%s", filepath.Base(f), k, origin[k])
		}
	}
	// webhook_to_callback and poll_to_callback carry 5 each, redrive_dlq 5, hybrid_to_kafka 4.
	assert.GreaterOrEqual(t, copies, 19)
}

// A filter of resources/filters.yaml keeps the event's bytes: the events a
// pipeline writes through it are the input lines byte for byte (key order,
// the store's `\/` escapes), and the filtered-out ones are gone.
func TestFilterKeepsTheBytes(t *testing.T) {
	dir := t.TempDir()
	names := []string{"order.created-24.json", "order.updated-20.json", "product.updated-12.json", "coupon.created-26.json"}
	var in bytes.Buffer
	for _, n := range names {
		b, err := os.ReadFile(repoPath("resources/testdata/events/" + n))
		require.NoError(t, err)
		in.Write(bytes.TrimRight(b, "\n"))
		in.WriteByte('\n')
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "in.jsonl"), in.Bytes(), 0o600))
	conf := filepath.Join(dir, "filter.yaml")
	require.NoError(t, os.WriteFile(conf, []byte(`
http:
  address: ${WOOEVENTS_HTTP_ADDRESS}
input:
  file:
    paths: [ ./in.jsonl ]
    scanner:
      lines: {}
pipeline:
  processors:
    - resource: filter_resource_action
    - resource: filter_order_total_over
output:
  file:
    path: ./out.jsonl
    codec: lines
`), 0o600))
	p := startWooevents(t, dir, map[string]string{
		"WOOEVENTS_FILTER_TYPES":           "order.*, product.*",
		"WOOEVENTS_FILTER_MIN_ORDER_TOTAL": "50.00",
	}, "-r", repoPath("resources/filters.yaml"), "-c", conf)
	p.waitExit(t, 30*time.Second)

	out, err := os.ReadFile(filepath.Join(dir, "out.jsonl"))
	require.NoError(t, err)
	lines := bytes.Split(in.Bytes(), []byte("\n"))
	got := bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n"))
	// order 24 (73.50), order 20 (104.00) and product 12 pass, in any order; the coupon is filtered out.
	require.Len(t, got, 3, "%s", out)
	for _, want := range lines[:3] {
		found := false
		for _, g := range got {
			found = found || bytes.Equal(g, want)
		}
		assert.True(t, found, "written byte for byte: %.120s…", want)
	}
	assert.False(t, bytes.Contains(out, []byte(`"type":"coupon.created"`)), "the coupon is filtered out")
	assert.True(t, bytes.Contains(out, []byte(`\/`)), "the store's escaped slashes are kept")
}
