package main

import (
	"context"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
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
	)
}
