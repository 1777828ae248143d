// Package docgen keeps docs/reference/ in step with the plugin specs: the
// reference pages are rendered from the same specs `wooevents list` and
// `wooevents create` read, and this test fails when a page is stale.
// Regenerate with: go test ./tests/docgen -update
package docgen

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/require"

	_ "github.com/wooevents/wooevents/plugin/boltcache"
	_ "github.com/wooevents/wooevents/plugin/httpcallback"
	_ "github.com/wooevents/wooevents/plugin/kafkafranz"
	_ "github.com/wooevents/wooevents/plugin/prometheus"
	_ "github.com/wooevents/wooevents/plugin/signing"
	_ "github.com/wooevents/wooevents/plugin/wcpoll"
	_ "github.com/wooevents/wooevents/plugin/wcwebhook"
)

var update = flag.Bool("update", false, "rewrite docs/reference from the plugin specs")

// ours lists the components this project registers, by kind.
var ours = map[string][]string{
	"input":   {"woocommerce_poll", "woocommerce_webhook"},
	"output":  {"kafka_franz", "http_callback"},
	"cache":   {"bbolt"},
	"metrics": {"prometheus"},
}

func TestReferenceIsCurrent(t *testing.T) {
	env := service.GlobalEnvironment()
	views := map[string]*service.ConfigView{}
	collect := func(kind string) func(string, *service.ConfigView) {
		return func(name string, v *service.ConfigView) { views[kind+"/"+name] = v }
	}
	env.WalkInputs(collect("input"))
	env.WalkOutputs(collect("output"))
	env.WalkCaches(collect("cache"))
	env.WalkMetrics(collect("metrics"))

	dir := filepath.Join("..", "..", "docs", "reference")
	var index []string
	for _, kind := range []string{"input", "output", "cache", "metrics"} {
		for _, name := range ours[kind] {
			v, ok := views[kind+"/"+name]
			require.True(t, ok, "%s %s is not registered", kind, name)
			data, err := v.TemplateData()
			require.NoError(t, err)
			page := render(kind, data)
			file := kind + "_" + name + ".md"
			index = append(index, fmt.Sprintf("- [`%s`](%s) (%s): %s", name, file, kind, firstLine(data.Summary, data.Description)))
			check(t, filepath.Join(dir, file), page)
		}
	}
	methods := renderMethods(t, oursMethods)
	index = append(index, "- [Bloblang methods](bloblang_methods.md): `"+strings.Join(oursMethods, "`, `")+"`")
	check(t, filepath.Join(dir, "bloblang_methods.md"), methods)
	check(t, filepath.Join(dir, "README.md"), []byte("# Plugin reference\n\nGenerated from the plugin specs by `go test ./tests/docgen -update`; `make test` fails when it is stale.\n\n"+strings.Join(index, "\n")+"\n"))
}

// oursMethods lists the Bloblang methods this project registers.
var oursMethods = []string{"cloud_elements_signature", "standard_webhooks_signature"}

func renderMethods(t *testing.T, names []string) []byte {
	t.Helper()
	views := map[string]*bloblang.MethodView{}
	bloblang.GlobalEnvironment().WalkMethods(func(name string, v *bloblang.MethodView) { views[name] = v })
	var b bytes.Buffer
	b.WriteString("# Bloblang methods\n\n")
	for _, name := range names {
		v, ok := views[name]
		require.True(t, ok, "bloblang method %s is not registered", name)
		d := v.TemplateData()
		fmt.Fprintf(&b, "## `%s`\n\n%s\n\n", d.Name, strings.TrimSpace(d.Description))
		if len(d.Params.Definitions) > 0 {
			b.WriteString("| parameter | type | description |\n|---|---|---|\n")
			for _, p := range d.Params.Definitions {
				fmt.Fprintf(&b, "| `%s` | %s | %s |\n", p.Name, p.ValueType, strings.ReplaceAll(strings.TrimSpace(p.Description), "\n", " "))
			}
			b.WriteString("\n")
		}
		for _, ex := range d.Examples {
			fmt.Fprintf(&b, "%s\n\n```coffee\n%s\n```\n\n", strings.TrimSpace(ex.Summary), strings.TrimSpace(ex.Mapping))
		}
	}
	return b.Bytes()
}

func check(t *testing.T, path string, want []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(path, want, 0o644))
		return
	}
	got, err := os.ReadFile(path)
	require.NoError(t, err, "run: go test ./tests/docgen -update")
	require.Equal(t, string(want), string(got), "%s is stale; run: go test ./tests/docgen -update", path)
}

func firstLine(summary, description string) string {
	s := strings.TrimSpace(summary)
	if s == "" {
		s = strings.TrimSpace(description)
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func render(kind string, d service.TemplateDataPlugin) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# `%s` (%s)\n\n", d.Name, kind)
	if s := strings.TrimSpace(d.Summary); s != "" {
		fmt.Fprintf(&b, "%s\n\n", s)
	}
	if s := strings.TrimSpace(d.Description); s != "" {
		fmt.Fprintf(&b, "%s\n\n", s)
	}
	fmt.Fprintf(&b, "## Common config\n\n```yaml\n%s```\n\n## All fields\n\n```yaml\n%s```\n\n", d.CommonConfigYAML, d.AdvancedConfigYAML)
	for _, ex := range d.Examples {
		fmt.Fprintf(&b, "## Example: %s\n\n%s\n\n```yaml\n%s\n```\n\n", ex.Title, strings.TrimSpace(ex.Summary), strings.TrimSpace(ex.Config))
	}
	fmt.Fprintf(&b, "## Fields\n\n")
	fields := append([]service.TemplateDataPluginField(nil), d.Fields...)
	for _, f := range fields {
		fmt.Fprintf(&b, "### `%s`\n\n", f.FullName)
		if s := strings.TrimSpace(f.Description); s != "" {
			fmt.Fprintf(&b, "%s\n\n", s)
		}
		var facts []string
		facts = append(facts, "Type: `"+f.Type+"`")
		if f.DefaultMarshalled != "" {
			facts = append(facts, "Default: `"+f.DefaultMarshalled+"`")
		}
		if f.IsSecret {
			facts = append(facts, "Secret: yes (scrubbed from `echo` output)")
		}
		if f.IsInterpolated {
			facts = append(facts, "Interpolated: yes")
		}
		fmt.Fprintf(&b, "%s\n\n", strings.Join(facts, " · "))
		for _, o := range f.AnnotatedOptions {
			fmt.Fprintf(&b, "- `%s`: %s\n", o[0], o[1])
		}
		if len(f.Options) > 0 {
			fmt.Fprintf(&b, "Options: `%s`\n\n", strings.Join(f.Options, "`, `"))
		}
		if len(f.ExamplesMarshalled) > 0 {
			fmt.Fprintf(&b, "Examples:\n\n")
			for _, ex := range f.ExamplesMarshalled {
				fmt.Fprintf(&b, "```yaml\n%s\n```\n\n", strings.TrimSpace(ex))
			}
		}
	}
	return b.Bytes()
}
