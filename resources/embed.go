// Package resources embeds the reusable resource files of this directory so that
// the binary (the import-cloud-elements command) can write them into the
// pipelines it generates: one source of truth for the envelope, the signers and
// the dead-letter records.
package resources

import "embed"

// FS holds the resource files that have no side effects when loaded (processor
// and output resources only; dedupe.yaml opens a bbolt file and is not here).
//
//go:embed cloud_elements.yaml standard_webhooks.yaml callback.yaml filters.yaml
var FS embed.FS
