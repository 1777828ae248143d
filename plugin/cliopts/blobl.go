package cliopts

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/urfave/cli/v2"
)

// BloblCommand is wooevents' `blobl`: it runs a Bloblang mapping over each
// line of stdin and prints each result before reading the next line.
//
// It replaces upstream's command of the same name, which prints its results
// from a goroutine it does not wait for: the last results, and so the only
// one of a single input line, are often lost when the process exits
// (benthos v4.60.0, internal/cli/blobl). Upstream's `blobl server` is not
// included.
func BloblCommand() *cli.Command {
	return &cli.Command{
		Name:      "blobl",
		Usage:     "Run a Bloblang mapping over each line of stdin and print the results",
		ArgsUsage: "'<mapping>'",
		Description: `Tries out a mapping, one JSON document per input line, one result per output line:

  echo '{"type":"order.updated","data":{"total":"99.00"}}' | wooevents blobl 'root = this.data.total.number() > 50'
  wooevents blobl -f ./mapping.blobl < events.jsonl

The mapping sees each line as the message: this (the line parsed as JSON), content() (its bytes), and the
Bloblang methods wooevents adds (cloud_elements_signature, standard_webhooks_signature). A root that is not
assigned prints the line unchanged; a deleted root prints nothing. A line that fails is reported on stderr
with its number and the next line is read; the exit code is 1 when any line failed.

Bloblang: https://www.benthos.dev/docs/guides/bloblang/about`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "read the mapping from a file"},
			&cli.BoolFlag{Name: "raw", Aliases: []string{"r"}, Usage: "give the mapping each line as a string (this) instead of parsing it as JSON"},
			&cli.BoolFlag{Name: "pretty", Aliases: []string{"p"}, Usage: "indent structured results"},
			&cli.IntFlag{Name: "max-token-length", Value: bufio.MaxScanTokenSize, Usage: "longest input line, in bytes"},
		},
		Action: func(c *cli.Context) error {
			mapping := c.Args().First()
			if file := c.String("file"); file != "" {
				if mapping != "" {
					return cli.Exit("blobl: give the mapping either inline or with --file, not both", 2)
				}
				b, err := os.ReadFile(file)
				if err != nil {
					return cli.Exit(fmt.Sprintf("blobl: %v", err), 2)
				}
				mapping = string(b)
			}
			if mapping == "" {
				return cli.Exit("usage: wooevents blobl '<mapping>' (or --file mapping.blobl), documents on stdin", 2)
			}
			exec, err := bloblang.GlobalEnvironment().Parse(mapping)
			if err != nil {
				return cli.Exit(fmt.Sprintf("blobl: %v", err), 2)
			}
			failed, err := runBlobl(exec, os.Stdin, c.App.Writer, c.App.ErrWriter, c.Bool("raw"), c.Bool("pretty"), c.Int("max-token-length"))
			if err != nil {
				return cli.Exit(fmt.Sprintf("blobl: reading stdin: %v", err), 1)
			}
			if failed > 0 {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}

// runBlobl maps every line of in, writing each result to out as soon as it
// is computed, and returns the number of lines that failed.
func runBlobl(exec *bloblang.Executor, in io.Reader, out, errOut io.Writer, raw, pretty bool, maxLine int) (failed int, err error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(nil, maxLine)
	for n := 1; sc.Scan(); n++ {
		res, deleted, err := mapLine(exec, sc.Bytes(), raw, pretty)
		if err != nil {
			failed++
			fmt.Fprintf(errOut, "line %d: %v\n", n, err)
			continue
		}
		if deleted {
			continue
		}
		if _, err := fmt.Fprintf(out, "%s\n", res); err != nil {
			return failed, err
		}
	}
	return failed, sc.Err()
}

// mapLine runs the mapping on one line.
func mapLine(exec *bloblang.Executor, line []byte, raw, pretty bool) (out []byte, deleted bool, err error) {
	if raw {
		v, err := exec.Query(string(line))
		if errors.Is(err, bloblang.ErrRootDeleted) {
			return nil, true, nil
		}
		if err != nil {
			return nil, false, err
		}
		return format(v, pretty)
	}
	msg := service.NewMessage(append([]byte(nil), line...))
	res, err := msg.BloblangQuery(exec)
	if err != nil {
		return nil, false, err
	}
	if res == nil {
		return nil, true, nil
	}
	if pretty {
		if v, err := res.AsStructured(); err == nil {
			return format(v, true)
		}
	}
	b, err := res.AsBytes()
	return b, false, err
}

// format prints a mapping's value: strings and bytes as they are, anything
// else as JSON.
func format(v any, pretty bool) ([]byte, bool, error) {
	switch t := v.(type) {
	case string:
		return []byte(t), false, nil
	case []byte:
		return t, false, nil
	}
	var b []byte
	var err error
	if pretty {
		b, err = json.MarshalIndent(v, "", "  ")
	} else {
		b, err = json.Marshal(v)
	}
	return b, false, err
}
