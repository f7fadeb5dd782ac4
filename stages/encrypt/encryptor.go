package encrypt

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/awsarn"
)

// Object properties the Encryptor sets.
const (
	// Suffix is appended to the key of an envelope-encrypted object.
	Suffix = ".enc"
	// ContentTypeEnvelope is the content type of an envelope object.
	ContentTypeEnvelope = "application/octet-stream"
	// ContentTypeGzip is the content type of a gzip JSON Lines object.
	ContentTypeGzip = "application/gzip"
)

// Encryption context keys of an export object. ContextBucket is present
// only for S3 destinations.
const (
	ContextDestination = "destination"
	ContextKey         = "key"
	ContextBucket      = "bucket"
)

var (
	// ErrEncryptionMode means a destination's encryption mode is unknown or
	// unusable for it (SSE-KMS without a KMS key, or on a LOCAL
	// destination). It wraps pipeline.ErrAccess: the destination's
	// properties must be fixed.
	ErrEncryptionMode = fmt.Errorf("unusable encryption mode: %w", pipeline.ErrAccess)
	// ErrNoKeyFile means an envelope destination of the local provider names
	// no key file and no default was given. It wraps pipeline.ErrAccess.
	ErrNoKeyFile = fmt.Errorf("no local master key file: %w", pipeline.ErrAccess)
)

// EncryptionContext returns the encryption context of an export object:
// {"destination": destinationID, "key": key}, key being the object key
// without Suffix. Seal binds the data key to it; tools opening an object can
// check that it is the object its name says.
func EncryptionContext(destinationID, key string) map[string]string {
	return map[string]string{ContextDestination: destinationID, ContextKey: key}
}

// ProviderFor returns the key provider of an envelope destination.
type ProviderFor func(dest *pipeline.Destination) (KeyProvider, error)

// Encryptor is the encrypt stage: it turns a batch's gzip bytes into the
// object to write, per the destination's encryption mode. It is safe for
// concurrent use if its ProviderFor is.
type Encryptor struct {
	providerFor ProviderFor
}

// NewEncryptor returns an Encryptor that asks providerFor for the key
// provider of envelope destinations (LocalKeys.ForDestination for the local
// master key). providerFor may be nil when no destination uses envelope
// mode; such a destination then fails with ErrEncryptionMode.
func NewEncryptor(providerFor ProviderFor) *Encryptor {
	return &Encryptor{providerFor: providerFor}
}

// Encrypt returns the object for a batch's gzip bytes gz (lines findings)
// under the object key key (Batch.ObjectKey):
//
//   - EncryptionEnvelope: Key is key+Suffix, Body the envelope sealed with a
//     fresh data key bound to EncryptionContext(dest.ID, key) (plus
//     ContextBucket, the bucket's name, for an S3 destination), ContentType
//     ContentTypeEnvelope. One key provider call per object.
//   - EncryptionSSEKMS: Key is key, Body is gz itself (not copied),
//     ContentType ContentTypeGzip, SSEKMSKeyID dest.KmsKeyArn; nothing is
//     called.
//
// Another mode, SSE-KMS without a key or on a LOCAL destination fails with
// ErrEncryptionMode; provider errors are returned wrapped (an unusable key
// wraps pipeline.ErrAccess).
func (e *Encryptor) Encrypt(ctx context.Context, dest *pipeline.Destination, key string, gz []byte, lines int) (*pipeline.Object, error) {
	switch dest.Encryption {
	case pipeline.EncryptionEnvelope:
		if e.providerFor == nil {
			return nil, fmt.Errorf("destination %s: envelope mode but no key provider configured: %w", dest.ID, ErrEncryptionMode)
		}
		p, err := e.providerFor(dest)
		if err != nil {
			return nil, fmt.Errorf("destination %s: key provider: %w", dest.ID, err)
		}
		encCtx := EncryptionContext(dest.ID, key)
		if dest.Type == pipeline.DestinationS3 {
			b, err := awsarn.ParseS3Destination(dest.Arn)
			if err != nil {
				return nil, fmt.Errorf("destination %s: %w: %w", dest.ID, ErrEncryptionMode, err)
			}
			// KMS logs the context with every call (CloudTrail): it names
			// the bucket and the object the data key belongs to.
			encCtx[ContextBucket] = b.Bucket
		}
		body, err := Seal(ctx, p, encCtx, gz)
		if err != nil {
			return nil, fmt.Errorf("destination %s: seal %s: %w", dest.ID, key, err)
		}
		return &pipeline.Object{Key: key + Suffix, Body: body, ContentType: ContentTypeEnvelope, Lines: lines}, nil
	case pipeline.EncryptionSSEKMS:
		if dest.Type == pipeline.DestinationLocal {
			return nil, fmt.Errorf("destination %s: %s needs an S3 destination, not %s: %w", dest.ID, dest.Encryption, dest.Type, ErrEncryptionMode)
		}
		if dest.KmsKeyArn == "" {
			return nil, fmt.Errorf("destination %s: %s without a KMS key: %w", dest.ID, dest.Encryption, ErrEncryptionMode)
		}
		return &pipeline.Object{Key: key, Body: gz, ContentType: ContentTypeGzip, SSEKMSKeyID: dest.KmsKeyArn, Lines: lines}, nil
	default:
		return nil, fmt.Errorf("destination %s: encryption mode %q (want %q or %q): %w", dest.ID, dest.Encryption, pipeline.EncryptionSSEKMS, pipeline.EncryptionEnvelope, ErrEncryptionMode)
	}
}

// LocalKeys loads local master key files once per path and keeps them for
// the life of the process (a replaced key file is seen after a restart). It
// is safe for concurrent use; a failed load is not cached, so fixing the file
// takes effect on the next call.
type LocalKeys struct {
	defaultPath string
	mu          sync.Mutex
	byPath      map[string]*Local
}

// NewLocalKeys returns a LocalKeys whose destinations without a KeyFile use
// defaultPath (<data>/keys/local-master.key in gdexport; "" for none).
func NewLocalKeys(defaultPath string) *LocalKeys {
	return &LocalKeys{defaultPath: defaultPath, byPath: map[string]*Local{}}
}

// Get returns the provider of the key file at path, creating the file on
// first use (EnsureLocal).
func (k *LocalKeys) Get(path string) (*Local, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("local key file %s: %w", path, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if l, ok := k.byPath[abs]; ok {
		return l, nil
	}
	l, err := EnsureLocal(abs)
	if err != nil {
		return nil, err
	}
	k.byPath[abs] = l
	return l, nil
}

// ForDestination is a ProviderFor: the local provider of dest.KeyFile, or of
// the default path when dest has none (ErrNoKeyFile when neither is set).
func (k *LocalKeys) ForDestination(dest *pipeline.Destination) (KeyProvider, error) {
	path := dest.KeyFile
	if path == "" {
		path = k.defaultPath
	}
	if path == "" {
		return nil, fmt.Errorf("destination %s: %w", dest.ID, ErrNoKeyFile)
	}
	l, err := k.Get(path)
	if err != nil {
		return nil, err
	}
	return l, nil
}
