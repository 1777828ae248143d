// Package metrics runs the real wooevents binary with the `prometheus`
// metrics exporter against the store simulator (tests/wcsim, in this
// process), drives polls, webhook deliveries, rejections and a webhook
// re-enable, and asserts the series scraped from /metrics over HTTP, parsed
// with the Prometheus text parser.
package metrics

import (
	"os"
	"testing"

	"github.com/wooevents/wooevents/tests/testproc"
)

// binPath is the wooevents binary: $WOOEVENTS_BIN, or built by TestMain.
var binPath string

func TestMain(m *testing.M) {
	os.Exit(testproc.MainWithBinary(m, &binPath))
}
