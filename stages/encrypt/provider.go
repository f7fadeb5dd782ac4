package encrypt

import (
	"context"
	"fmt"
)

// KeyProvider makes and unwraps data keys for envelope encryption; it is the
// shape of KMS's GenerateDataKey and Decrypt, so the local master key and
// AWS KMS are interchangeable. Implementations must be safe for concurrent
// use. Errors that mean the key itself is unusable (missing, disabled,
// access denied, an unreadable key file) wrap pipeline.ErrAccess, so the
// destination's status shows that its properties must be fixed; other errors
// are transient.
type KeyProvider interface {
	// Name is the provider's name as envelopes record it ("local", "kms").
	Name() string
	// KeyID identifies the key that wraps data keys; envelopes record it and
	// Decrypt refuses, with ErrWrongKey, an envelope of another key.
	KeyID() string
	// GenerateDataKey returns a fresh random 32-byte data key and the same
	// key wrapped under KeyID, bound to encCtx. The caller zeroes plaintext
	// after use.
	GenerateDataKey(ctx context.Context, encCtx map[string]string) (plaintext, wrapped []byte, err error)
	// Decrypt unwraps a data key wrapped under keyID with encCtx. It fails
	// with ErrWrongKey when keyID is not the provider's key and with
	// ErrTampered when wrapped or encCtx was altered.
	Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error)
}

// Resolver returns the key provider that can open envelopes of a provider
// name and key id; Open calls it once per envelope.
type Resolver func(provider, keyID string) (KeyProvider, error)

// Providers returns a Resolver that picks among ps by provider name. The
// key id is left for the provider's Decrypt to check, so that a wrong key
// is reported with both key ids rather than as a missing provider. A name
// no provider has gives ErrUnknownProvider.
func Providers(ps ...KeyProvider) Resolver {
	byName := make(map[string]KeyProvider, len(ps))
	for _, p := range ps {
		if _, dup := byName[p.Name()]; !dup {
			byName[p.Name()] = p
		}
	}
	return func(provider, keyID string) (KeyProvider, error) {
		p, ok := byName[provider]
		if !ok {
			return nil, fmt.Errorf("no %q key provider configured for key %s: %w", provider, keyID, ErrUnknownProvider)
		}
		return p, nil
	}
}
