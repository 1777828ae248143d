package wcpoll

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCmpIDAndKeys(t *testing.T) {
	assert.Equal(t, -1, cmpID("9", "10"))
	assert.Equal(t, 1, cmpID("100", "99"))
	assert.Equal(t, 0, cmpID("007", "7"))
	assert.Equal(t, -1, cmpID("5", "abc"))
	assert.Equal(t, 1, cmpID("b", "a"))
	assert.Less(t, idKey("9"), idKey("10"))
	assert.Equal(t, "10", keyID(idKey("10")))
	assert.Equal(t, "sku-1", keyID(idKey("sku-1")))
	assert.Equal(t, -1, cmpKey(recKey{10, "900"}, recKey{11, "1"}))
	assert.Equal(t, -1, cmpKey(recKey{10, "9"}, recKey{10, "10"}))
}
