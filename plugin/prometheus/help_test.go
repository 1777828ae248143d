package prometheus

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docs/metrics.md lists every metric wooevents' own components register.
func TestHelpTextsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	require.NoError(t, err)
	n := 0
	for name := range helpTexts {
		if strings.HasPrefix(name, "woocommerce_") || strings.HasPrefix(name, "callback_") {
			n++
			assert.Contains(t, string(doc), "`"+name+"`", "docs/metrics.md does not describe %s", name)
		}
	}
	assert.GreaterOrEqual(t, n, 17)
}
