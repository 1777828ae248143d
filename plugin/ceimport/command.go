package ceimport

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// Command is the `import-cloud-elements` subcommand: it reads a Cloud Elements
// /instances body (a file, or `-` for stdin), writes the pipeline YAML to
// stdout and, to stderr, the environment variables to set and notes. Secret
// values are never printed.
func Command() *cli.Command {
	return &cli.Command{
		Name:      "import-cloud-elements",
		Usage:     "Convert a Cloud Elements WooCommerce /instances body into a wooevents pipeline",
		ArgsUsage: "<body.json | ->",
		Description: `Reads the JSON body that was POSTed to Cloud Elements' /instances to create a WooCommerce
(woocommercerest) instance with events, and writes an equivalent, runnable pipeline to stdout:
polling or webhook input, Cloud Elements envelope, Elements-Webhook-Signature, callback delivery
with retries and a dead-letter file. The store's keys and the signature key are not copied: the
pipeline reads them from environment variables, listed on stderr (names only).

  wooevents import-cloud-elements body.json > pipeline.yaml
  wooevents lint pipeline.yaml && wooevents -c pipeline.yaml`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("usage: wooevents import-cloud-elements <body.json | ->", 2)
			}
			return run(c.Args().First(), os.Stdin, c.App.Writer, c.App.ErrWriter)
		},
	}
}

func run(path string, stdin io.Reader, stdout, stderr io.Writer) error {
	var body []byte
	var err error
	if path == "-" {
		body, err = io.ReadAll(io.LimitReader(stdin, maxJSONBody+1))
	} else {
		body, err = os.ReadFile(path)
	}
	if err != nil {
		return cli.Exit(fmt.Sprintf("import-cloud-elements: %v", err), 1)
	}
	res, err := Import(body)
	if err != nil {
		return cli.Exit("import-cloud-elements: "+err.Error(), 1)
	}
	if _, err := stdout.Write(res.Config); err != nil {
		return cli.Exit(fmt.Sprintf("import-cloud-elements: %v", err), 1)
	}
	_, _ = io.WriteString(stderr, Instructions(res))
	return nil
}

// Instructions is the text printed to stderr: the variables to set (secrets
// by name only) and the conversion notes.
func Instructions(res *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Pipeline written to stdout (%s mode). Set these before running it:\n", res.Mode)
	for _, e := range res.Env {
		if !e.Required {
			continue
		}
		from := ""
		if e.From != "" {
			from = " (" + e.From + ")"
		}
		fmt.Fprintf(&b, "export %s=...   # %s%s; secret, not shown\n", e.Name, e.Description, from)
	}
	b.WriteString("# Optional (defaults are baked into the pipeline):\n")
	for _, e := range res.Env {
		if e.Required {
			continue
		}
		switch {
		case e.Secret:
			fmt.Fprintf(&b, "#   %s   %s\n", e.Name, e.Description)
		case e.Value != "":
			fmt.Fprintf(&b, "#   %s=%s   %s\n", e.Name, e.Value, e.Description)
		default:
			fmt.Fprintf(&b, "#   %s   %s\n", e.Name, e.Description)
		}
	}
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "# Note: %s\n", n)
	}
	return b.String()
}
