package main

import (
	"context"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/plugin/ceimport"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	_ "github.com/wooevents/wooevents/plugin/boltcache"
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
	service.RunCLI(context.Background(),
		service.CLIOptSetBinaryName("wooevents"),
		service.CLIOptSetProductName("wooevents"),
		service.CLIOptSetVersion(Version, DateBuilt),
		service.CLIOptAddCommand(ceimport.Command()),
	)
}
