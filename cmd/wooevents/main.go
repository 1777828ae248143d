package main

import (
	"context"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/plugin/ceimport"
	"github.com/wooevents/wooevents/plugin/ceserve"
	"github.com/wooevents/wooevents/plugin/cliopts"
	"github.com/wooevents/wooevents/plugin/doctor"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	_ "github.com/wooevents/wooevents/plugin/boltcache"
	_ "github.com/wooevents/wooevents/plugin/httpcallback"
	_ "github.com/wooevents/wooevents/plugin/kafkafranz"
	_ "github.com/wooevents/wooevents/plugin/prometheus"
	_ "github.com/wooevents/wooevents/plugin/signing"
	_ "github.com/wooevents/wooevents/plugin/wcpoll"
	_ "github.com/wooevents/wooevents/plugin/wcwebhook"
)

// Version and DateBuilt are set at build time with
// -ldflags "-X main.Version=... -X main.DateBuilt=..."; "dev" and "unknown" otherwise.
var (
	Version   = "dev"
	DateBuilt = "unknown"
)

func main() {
	// cliopts: names, version, defaults (HTTP server on 127.0.0.1:4195, @service=wooevents), help text, and the
	// wooevents variants of blobl and lint.
	opts := append(cliopts.Options(Version, DateBuilt),
		service.CLIOptAddCommand(ceimport.Command()),
		service.CLIOptAddCommand(doctor.Command()),
		service.CLIOptAddCommand(ceserve.Command()),
	)
	service.RunCLI(context.Background(), opts...)
}
