package ceserve

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/wooevents/wooevents/plugin/ceimport"
)

// instancePipeline is the pipeline serve builds for a seed body.
func instancePipeline(t *testing.T, seed string) []byte {
	t.Helper()
	parsed, err := ceimport.Parse(seedBody(t, seed, map[string]any{"store.url": "https://store.example"}, nil))
	require.NoError(t, err)
	conf, err := parsed.Pipeline(ceimport.PipelineOptions{InputLabel: "instance_1", StateName: "instance", CallbackMaxInFlight: 4})
	require.NoError(t, err)
	return conf
}

func TestCalledFunctions(t *testing.T) {
	assert.Equal(t, map[string]bool{"env": true, "now": true, "content": true, "throw": true},
		calledFunctions([]byte(`root = env("A").or(now().ts_unix()) ${! content().string() } x = if 1 > 0 { throw("x") } else { deleted_x }`)),
		"functions only: methods (after a dot) and names without a call are left out")
	assert.Equal(t, map[string]bool{"throw": true, "env": true}, calledFunctions([]byte(`throw(env("X")) a.now() Xuuid_v4()`)),
		"a call inside a call is found; a method, or a name glued to another, is not")

	for _, seed := range []string{"polling-instance.json", "webhook-instance.json"} {
		called := calledFunctions(instancePipeline(t, seed))
		for _, fn := range []string{"env", "content", "now", "deleted", "throw"} {
			assert.True(t, called[fn], "%s: %s() is called", seed, fn)
		}
		for _, m := range []string{"or", "parse_json", "ts_format", "cloud_elements_signature", "catch"} {
			assert.False(t, called[m], "%s: %s is a method", seed, m)
		}
	}
}

// TestInstanceBloblang parses every mapping of both modes' pipelines with
// the instance's Bloblang environment: a function calledFunctions missed
// would be refused here.
func TestInstanceBloblang(t *testing.T) {
	vars := map[string]string{"WOOEVENTS_CALLBACK_SIGNATURE_KEY": "k1"}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	for _, seed := range []string{"polling-instance.json", "webhook-instance.json"} {
		conf := instancePipeline(t, seed)
		env, err := bloblangWithEnv(lookup, calledFunctions(conf))
		require.NoError(t, err)
		var doc struct {
			ProcessorResources []struct {
				Label   string `yaml:"label"`
				Mapping string `yaml:"mapping"`
			} `yaml:"processor_resources"`
		}
		require.NoError(t, yaml.Unmarshal(conf, &doc))
		require.NotEmpty(t, doc.ProcessorResources)
		for _, p := range doc.ProcessorResources {
			_, err := env.Parse(p.Mapping)
			require.NoError(t, err, "%s: %s", seed, p.Label)
		}

		exe, err := env.Parse(`root.key = env("WOOEVENTS_CALLBACK_SIGNATURE_KEY")
root.home = env("HOME")`)
		require.NoError(t, err)
		out, err := exe.Query(nil)
		require.NoError(t, err)
		assert.Equal(t, map[string]any{"key": "k1", "home": nil}, out,
			"env() reads the instance's variables, never the process environment")

		_, err = env.Parse(`root = hostname()`)
		require.Error(t, err, "a function the pipeline never calls is not in the instance's environment")
	}
}
