// Package buildinfo holds the wooevents version, set at build time by the
// Makefile with -ldflags "-X github.com/wooevents/wooevents/internal/buildinfo.Version=<git describe>".
// Components that announce themselves (the REST client's and the callback
// output's User-Agent) read it here, so one linker flag versions them all.
package buildinfo

// Version is the build's version, "dev" when built without the Makefile.
var Version = "dev"

// UserAgent is the default User-Agent of outbound HTTP requests:
// "wooevents/<Version>".
func UserAgent() string { return "wooevents/" + Version }
