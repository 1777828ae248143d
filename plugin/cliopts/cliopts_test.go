package cliopts

import (
	"bytes"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestExpandEnvLikeBenthos(t *testing.T) {
	env := lookup(map[string]string{"SET": "value", "EMPTY": "", "B64": "aGVsbG8=", "MULTI": "a\nb"})
	for in, want := range map[string]string{
		"a: ${SET}":                     "a: value",
		"a: ${SET:default}":             "a: value",
		"a: ${EMPTY:default}":           "a: default", // empty counts as unset when a default exists
		"a: ${UNSET:http://h:1/p}":      "a: http://h:1/p",
		"a: ${UNSET:}":                  "a: ",
		"a: ${B64|base64decode}":        "a: hello",
		"a: ${MULTI}":                   `a: a\nb`,
		"a: ${{SET}}":                   "a: ${SET}", // escaped: a literal interpolation
		"a: ${! @meta }":                "a: ${! @meta }",
		"a: '${SET}-${UNSET:x}-${SET}'": "a: 'value-x-value'",
	} {
		out, missing := ExpandEnv([]byte(in), env)
		assert.Equal(t, want, string(out), in)
		assert.Empty(t, missing, in)
	}
	out, missing := ExpandEnv([]byte("a: ${NOPE}\nb: ${NOPE2|base64decode}\nc: ${SET}"), env)
	assert.Equal(t, "a: \nb: \nc: value", string(out))
	assert.Equal(t, []string{"NOPE", "NOPE2"}, missing)
}

func TestUnsetVars(t *testing.T) {
	conf := []byte("a: ${A}\nb: ${B:default}\nc: ${C}\nd: ${A}\ne: ${D|base64decode}\nf: ${! meta(\"x\") }")
	assert.Equal(t, []string{"A", "D"}, UnsetVars(conf, lookup(map[string]string{"C": "set"})))
	assert.Empty(t, UnsetVars(conf, lookup(map[string]string{"A": "", "C": "", "D": ""})), "set but empty is set")
}

func TestLintTargets(t *testing.T) {
	targets, envFiles := lintTargets([]string{"--deprecated", "-r", "res.yaml", "--resources=more.yaml", "-e", "a.env", "--verbose", "p.yaml", "--env-file=b.env", "-t", "tmpl.yaml"})
	assert.Equal(t, []string{"res.yaml", "more.yaml", "p.yaml"}, targets)
	assert.Equal(t, []string{"a.env", "b.env"}, envFiles)
}

// The schema's defaults: loopback HTTP under /wooevents, @service=wooevents.
func TestSchemaDefaults(t *testing.T) {
	m := Schema("v", "d").NewStreamConfigMarshaller()
	out, err := m.AnyToYAML(map[string]any{"input": map[string]any{"stdin": map[string]any{}}, "output": map[string]any{"drop": map[string]any{}}})
	require.NoError(t, err)
	var conf struct {
		HTTP struct {
			Address  string `yaml:"address"`
			RootPath string `yaml:"root_path"`
		} `yaml:"http"`
		Logger struct {
			StaticFields map[string]string `yaml:"static_fields"`
		} `yaml:"logger"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(out), &conf), out)
	assert.Equal(t, DefaultHTTPAddress, conf.HTTP.Address)
	assert.Equal(t, DefaultHTTPRootPath, conf.HTTP.RootPath)
	assert.Equal(t, map[string]string{"@service": ServiceName}, conf.Logger.StaticFields)
}

func TestRunBlobl(t *testing.T) {
	exec, err := bloblang.GlobalEnvironment().Parse(`root = if this.keep { this.v } else { deleted() }`)
	require.NoError(t, err)
	var out, errOut bytes.Buffer
	in := strings.NewReader("{\"keep\":true,\"v\":{\"b\":1,\"a\":2}}\n{\"keep\":false}\nbroken\n{\"keep\":true,\"v\":\"text\"}\n")
	failed, err := runBlobl(exec, in, &out, &errOut, false, false, 1<<16)
	require.NoError(t, err)
	assert.Equal(t, 1, failed)
	assert.Equal(t, "{\"a\":2,\"b\":1}\ntext\n", out.String(), "a deleted root prints nothing; strings print raw")
	assert.Contains(t, errOut.String(), "line 3:")

	// A root that is not assigned prints the line as it came, bytes kept.
	keep, err := bloblang.GlobalEnvironment().Parse(`meta x = "y"`)
	require.NoError(t, err)
	out.Reset()
	_, err = runBlobl(keep, strings.NewReader(`{"z":1,"a":"\/"}`+"\n"), &out, &errOut, false, false, 1<<16)
	require.NoError(t, err)
	assert.Equal(t, `{"z":1,"a":"\/"}`+"\n", out.String())

	// --raw and --pretty.
	up, err := bloblang.GlobalEnvironment().Parse(`root = {"line": this.uppercase()}`)
	require.NoError(t, err)
	out.Reset()
	_, err = runBlobl(up, strings.NewReader("abc\n"), &out, &errOut, true, true, 1<<16)
	require.NoError(t, err)
	assert.Equal(t, "{\n  \"line\": \"ABC\"\n}\n", out.String())
}
