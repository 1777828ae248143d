package cliopts

import (
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/urfave/cli/v2"
)

// Flags of `wooevents lint` that change how unset environment variables are
// treated; every other argument goes to upstream's lint as it is.
const (
	flagSkipEnvVarCheck = "--skip-env-var-check"
	flagEnvVarCheck     = "--env-var-check"
)

// LintCommand is wooevents' `lint`: upstream's lint (same flags, same
// checks), except that a `${VAR}` without a default whose variable is unset
// in the linting shell is a note, not a lint error. Pipelines read their
// secrets from the environment, and a CI job or a newcomer linting them has
// none set. --env-var-check makes such variables errors again (upstream's
// behaviour); --skip-env-var-check also silences the notes.
//
// base are the options the upstream lint runs with (Options without the
// replaced commands).
func LintCommand(base []service.CLIOptFunc) *cli.Command {
	return &cli.Command{
		Name:            "lint",
		Usage:           "Check wooevents configs for errors without running them",
		ArgsUsage:       "[--deprecated] [--labels] [--verbose] [--env-var-check | --skip-env-var-check] [-r resources.yaml] <paths...>",
		SkipFlagParsing: true, // everything goes to upstream's lint, which parses it
		Description: `Exits with status 1 when a config has lint errors:

  wooevents lint ./config/*.yaml ./resources/*.yaml
  wooevents lint ./config/...          (every .yaml and .yml file below ./config)

A ${VAR} without a default whose variable is not set in this shell is reported as a note, and the config is
linted as if the variable were empty: set it before running the pipeline. --env-var-check makes it a lint
error (benthos' behaviour); --skip-env-var-check drops the note too. Other flags: --deprecated, --labels,
--verbose, -r/--resources, -e/--env-file, -t/--templates (see wooevents lint --help).`,
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			strict := slices.Contains(args, flagEnvVarCheck)
			quiet := slices.Contains(args, flagSkipEnvVarCheck)
			var fwd []string
			for _, a := range args {
				if a != flagEnvVarCheck && a != flagSkipEnvVarCheck {
					fwd = append(fwd, a)
				}
				if a == "-h" || a == "--help" || a == "-help" {
					fmt.Fprintf(c.App.Writer, "%s\n\n", c.Command.Description)
				}
			}
			if !strict {
				fwd = append([]string{flagSkipEnvVarCheck}, fwd...)
				if !quiet {
					printUnsetVarNotes(c.App.ErrWriter, args)
				}
			}
			code, err := service.RunCLIToCode(c.Context, append(slices.Clone(base),
				service.CLIOptSetArgs(append([]string{"wooevents", "lint"}, fwd...)...))...)
			if err != nil {
				fmt.Fprintln(c.App.ErrWriter, err)
			}
			if code != 0 {
				return cli.Exit("", code)
			}
			return nil
		},
	}
}

// lintValueFlags are upstream lint's flags that take a value.
var lintValueFlags = map[string]string{
	"-r": "resources", "--resources": "resources",
	"-e": "env-file", "--env-file": "env-file",
	"-t": "templates", "--templates": "templates",
}

// lintTargets splits lint's arguments into the files it lints (paths,
// globs, `dir/...` and -r resources) and the dotenv files it loads (-e).
func lintTargets(args []string) (targets, envFiles []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(a, "=")
		if kind, ok := lintValueFlags[name]; ok {
			if !hasValue {
				if i+1 >= len(args) {
					break
				}
				i++
				value = args[i]
			}
			switch kind {
			case "resources":
				targets = append(targets, value)
			case "env-file":
				envFiles = append(envFiles, value)
			}
			continue
		}
		if strings.HasPrefix(a, "-") {
			continue
		}
		targets = append(targets, a)
	}
	return expandPaths(targets), expandPaths(envFiles)
}

// expandPaths resolves globs and `dir/...` (every .yaml and .yml file below
// dir) as upstream's lint does.
func expandPaths(paths []string) []string {
	var out []string
	for _, p := range paths {
		if strings.HasSuffix(p, "...") {
			dir := strings.TrimSuffix(strings.TrimSuffix(p, "..."), "/")
			if dir == "" || dir == "." {
				dir = "."
			}
			_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
					out = append(out, path)
				}
				return nil
			})
			continue
		}
		if m, err := filepath.Glob(p); err == nil && len(m) > 0 {
			out = append(out, m...)
			continue
		}
		out = append(out, p)
	}
	return out
}

// envRef matches benthos' environment interpolations: ${VAR}, ${VAR:default},
// ${VAR|func}, ${VAR:default|func} (internal/config/env_vars.go).
var envRef = regexp.MustCompile(`\${[0-9A-Za-z_.]+(:((\${[^}]+})|[^}])*)?(?:\|[0-9A-Za-z]+)?}`)

// UnsetVars returns the variables referenced without a default in config
// that lookup does not find, sorted and without duplicates.
func UnsetVars(config []byte, lookup func(string) (string, bool)) []string {
	seen := map[string]bool{}
	for _, m := range envRef.FindAll(config, -1) {
		inner := string(m[2 : len(m)-1])
		if strings.Contains(inner, ":") {
			continue // has a default
		}
		name, _, _ := strings.Cut(inner, "|")
		if _, ok := lookup(name); !ok {
			seen[name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// printUnsetVarNotes writes one note per linted file that references unset
// variables without defaults.
func printUnsetVarNotes(w io.Writer, args []string) {
	targets, envFiles := lintTargets(args)
	fromFiles := map[string]string{}
	for _, f := range envFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // upstream reports it
		}
		vars, err := service.ParseEnvFile(b)
		if err != nil {
			continue
		}
		for k, v := range vars {
			fromFiles[k] = v
		}
	}
	lookup := func(k string) (string, bool) {
		if v, ok := fromFiles[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	for _, t := range targets {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // upstream reports it
		}
		if vars := UnsetVars(b, lookup); len(vars) > 0 {
			fmt.Fprintf(w, "%s: note: not set in this shell and without a default: %s; linted as empty — set them before running it (--env-var-check makes this an error)\n",
				t, strings.Join(vars, ", "))
		}
	}
}

// ExpandEnv replaces the environment interpolations of a config as benthos
// does when it reads one: ${VAR} with the variable, ${VAR:default} with the
// variable or, when it is unset or empty, the default; `${{VAR}}` stands for
// a literal `${VAR}`. Variables referenced without a default and not found are
// replaced by "" and returned in missing. The `|func` suffix (base64decode)
// is applied.
func ExpandEnv(config []byte, lookup func(string) (string, bool)) (out []byte, missing []string) {
	out = envRef.ReplaceAllFunc(config, func(m []byte) []byte {
		inner := string(m[2 : len(m)-1])
		fn := ""
		name, def, hasDef := strings.Cut(inner, ":")
		if hasDef {
			if i := strings.LastIndexByte(def, '|'); i >= 0 {
				def, fn = def[:i], def[i+1:]
			}
		} else if i := strings.LastIndexByte(name, '|'); i >= 0 {
			name, fn = name[:i], name[i+1:]
		}
		v, ok := lookup(name)
		switch {
		case hasDef && v == "":
			v = def
		case !hasDef && !ok:
			missing = append(missing, name)
		}
		if fn == "base64decode" {
			if d, err := base64.StdEncoding.DecodeString(v); err == nil {
				v = string(d)
			}
		}
		return []byte(strings.ReplaceAll(v, "\n", `\n`))
	})
	out = escapedEnvRef.ReplaceAll(out, []byte("$$$1"))
	return out, missing
}

// escapedEnvRef matches `${{...}}`, which stands for a literal `${...}`.
var escapedEnvRef = regexp.MustCompile(`\${({[0-9A-Za-z_.]+(:((\${[^}]+})|[^}])*)?})}`)
