package encrypt

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// testLocal creates a fresh local master key under a temporary directory.
func testLocal(t testing.TB) *Local {
	t.Helper()
	l, err := EnsureLocal(filepath.Join(t.TempDir(), "keys", "local-master.key"))
	if err != nil {
		t.Fatalf("EnsureLocal: %v", err)
	}
	return l
}

// countingProvider counts calls to the provider it wraps.
type countingProvider struct {
	KeyProvider
	generate, decrypt atomic.Int64
}

func (c *countingProvider) GenerateDataKey(ctx context.Context, encCtx map[string]string) ([]byte, []byte, error) {
	c.generate.Add(1)
	return c.KeyProvider.GenerateDataKey(ctx, encCtx)
}

func (c *countingProvider) Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	c.decrypt.Add(1)
	return c.KeyProvider.Decrypt(ctx, keyID, wrapped, encCtx)
}
