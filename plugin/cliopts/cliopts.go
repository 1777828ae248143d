// Package cliopts makes benthos' command line wooevents': the help text and
// its examples, the defaults of the service-wide settings (the HTTP server on
// 127.0.0.1:4195 under /wooevents, `@service=wooevents` in every log line),
// and wooevents' own `blobl` and `lint` commands, which replace upstream's
// (see blobl.go and lint.go for why).
package cliopts

import (
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/urfave/cli/v2"
)

// Defaults of the service-wide settings that differ from upstream benthos.
const (
	// DefaultHTTPAddress keeps /metrics, /ready and the stream's state on this
	// machine unless a config sets http.address (upstream: 0.0.0.0:4195).
	DefaultHTTPAddress = "127.0.0.1:4195"
	// DefaultHTTPRootPath is the prefix the HTTP endpoints are served under
	// as well as at the root (upstream: /benthos).
	DefaultHTTPRootPath = "/wooevents"
	// ServiceName is the `@service` field of every log line (upstream: benthos).
	ServiceName = "wooevents"
)

// DefaultConfigPaths are where the binary looks for a config when run
// without -c (upstream: /benthos.yaml, /etc/benthos/config.yaml, ...).
var DefaultConfigPaths = []string{"/wooevents.yaml", "/etc/wooevents/pipeline.yaml"}

// Options returns the CLI options of the wooevents binary: names, version,
// defaults, help text and the replaced commands. Append the binary's own
// commands (CLIOptAddCommand) after them.
func Options(version, dateBuilt string) []service.CLIOptFunc {
	base := baseOptions(version, dateBuilt)
	return append(base,
		service.CLIOptAddCommand(BloblCommand()),
		service.CLIOptAddCommand(LintCommand(base)),
	)
}

// baseOptions are Options without the replaced commands: what the nested
// upstream lint runs with.
func baseOptions(version, dateBuilt string) []service.CLIOptFunc {
	return []service.CLIOptFunc{
		service.CLIOptSetBinaryName("wooevents"),
		service.CLIOptSetProductName("wooevents"),
		service.CLIOptSetVersion(version, dateBuilt),
		service.CLIOptSetDefaultConfigPaths(DefaultConfigPaths...),
		service.CLIOptSetMainSchemaFrom(func() *service.ConfigSchema { return Schema(version, dateBuilt) }),
		setHelpTemplate,
	}
}

// Schema is the full config schema with wooevents' defaults: the HTTP server
// bound to DefaultHTTPAddress under DefaultHTTPRootPath, and ServiceName as
// the logs' @service. A config that sets these fields keeps its values.
func Schema(version, dateBuilt string) *service.ConfigSchema {
	s := service.GlobalEnvironment().FullConfigSchema(version, dateBuilt)
	s.SetFieldDefault(DefaultHTTPAddress, "http", "address")
	s.SetFieldDefault(DefaultHTTPRootPath, "http", "root_path")
	s.SetFieldDefault(map[string]any{"@service": ServiceName}, "logger", "static_fields")
	return s
}

// setHelpTemplate replaces the top-level help, whose text and examples are
// fixed in benthos (`create kafka//file`, "a stream processor for mundane
// tasks"), with wooevents' own. It is applied with the other options, before
// the app is built.
func setHelpTemplate(*service.CLIOptBuilder) { cli.AppHelpTemplate = appHelpTemplate }

// appHelpTemplate is urfave/cli's default app help with wooevents' name line
// and description.
const appHelpTemplate = `NAME:
   wooevents - WooCommerce store changes as one stream of normalized events, delivered where you want them

USAGE:
   wooevents [global options] command [command options]{{if .Version}}{{if not .HideVersion}}

VERSION:
   {{.Version}}{{end}}{{end}}

DESCRIPTION:
   Check a store, then run a pipeline or choose a command:

     wooevents doctor --store-url https://shop.example.com   check a store (keys from WOOEVENTS_CONSUMER_KEY
                                                             and WOOEVENTS_CONSUMER_SECRET)
     wooevents doctor -c ./config/poll_to_file.yaml          check every store a pipeline names
     wooevents -c ./config/poll_to_file.yaml                 run a pipeline
     wooevents lint ./config/*.yaml                          check pipelines without running them
     wooevents test ./config/...                             run their <name>_benthos_test.yaml unit tests
     wooevents create woocommerce_webhook//file > pipeline.yaml
     wooevents list inputs

   The HTTP server (/ping, /ready, /metrics) listens on 127.0.0.1:4195 unless the config sets http.address.
   Guides: README.md and docs/ in the wooevents repository.
{{- if .VisibleCommands}}

COMMANDS:{{template "visibleCommandCategoryTemplate" .}}{{end}}{{if .VisibleFlagCategories}}

GLOBAL OPTIONS:{{template "visibleFlagCategoryTemplate" .}}{{else if .VisibleFlags}}

GLOBAL OPTIONS:{{template "visibleFlagTemplate" .}}{{end}}
`
