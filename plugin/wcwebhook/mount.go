package wcwebhook

import (
	"net/http"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// Mounter serves woocommerce_webhook inputs on a listener its host owns,
// instead of each input opening its own. A program that runs many
// pipelines in one process (`wooevents serve` runs one per instance) sets
// one in a stream's resources with SetMounter after building the stream
// and before running it. The input then mounts its handler on Connect and
// unmounts it on Close, and opens no listener: `address`, `cert_file`,
// `key_file`, `read_header_timeout` and `idle_timeout` are the host's
// listener's business.
type Mounter interface {
	// Mount routes deliveries to h until unmount is called. path is the
	// input's `path`: h answers requests for it (and, with `stores`, for
	// `<path>/<name>`) and 404 for any other path, so the host maps its
	// own URLs onto it. An error fails the input's Connect, which benthos
	// retries.
	Mount(path string, h http.Handler) (unmount func(), err error)
}

// mounterKey is the resources key of the host's Mounter.
type mounterKey struct{}

// SetMounter makes the woocommerce_webhook inputs of the stream whose
// resources res are serve through m. Call it before the stream runs: the
// input looks for a Mounter when it is built.
func SetMounter(res *service.Resources, m Mounter) {
	res.SetGeneric(mounterKey{}, m)
}

// mounterOf is the host's Mounter, nil when the input serves on its own
// listener.
func mounterOf(res *service.Resources) Mounter {
	if res == nil {
		return nil
	}
	v, ok := res.GetGeneric(mounterKey{})
	if !ok {
		return nil
	}
	m, _ := v.(Mounter)
	return m
}
