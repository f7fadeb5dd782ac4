package encrypt

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/gdexport/gdexport/pipeline"
)

// ProviderLocal is the name envelopes record for the local master key.
const ProviderLocal = "local"

// MasterKeySize is the size of a local master key file: 32 bytes (AES-256).
const MasterKeySize = 32

// ErrKeyFile means the local master key file cannot be used: missing (for
// LoadLocal), unreadable, not a regular file, of the wrong size, or readable
// or writable by group or others. It wraps pipeline.ErrAccess: the
// destination's keyFile (or the file) must be fixed.
var ErrKeyFile = fmt.Errorf("unusable local master key file: %w", pipeline.ErrAccess)

// wrappedSize is the local provider's wrapped data key: nonce, key, tag.
const wrappedSize = nonceSize + DataKeySize + tagSize

// Local is the KeyProvider of a local master key file: it wraps data keys
// with AES-256-GCM under the master key, the encryption context as
// additional data. It is safe for concurrent use; the key stays in memory
// for the life of the value.
type Local struct {
	path   string
	keyID  string
	master cipher.AEAD
}

var _ KeyProvider = (*Local)(nil)

// LoadLocal reads an existing master key file; it never creates one (gdexport
// decrypt uses it, so a mistyped path is an error rather than a new key).
// Every failure to use the file wraps ErrKeyFile, except a read error that is
// not about the file itself (EIO and the like), which is transient.
func LoadLocal(path string) (*Local, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, keyFileError(path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, keyFileError(path, err)
	}
	switch {
	case !info.Mode().IsRegular():
		return nil, fmt.Errorf("local key file %s is not a regular file (%s): %w", path, info.Mode().Type(), ErrKeyFile)
	case info.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("local key file %s has mode %04o; it must be accessible by its owner only (chmod 600 %s): %w", path, info.Mode().Perm(), path, ErrKeyFile)
	case info.Size() != MasterKeySize:
		return nil, fmt.Errorf("local key file %s holds %d bytes, want %d: %w", path, info.Size(), MasterKeySize, ErrKeyFile)
	}
	key := make([]byte, MasterKeySize+1)
	defer clear(key)
	// One byte more than expected tells a file that grew since Stat.
	n, err := io.ReadFull(f, key)
	switch {
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF):
		return nil, keyFileError(path, err)
	case n != MasterKeySize:
		return nil, fmt.Errorf("local key file %s changed size while read (%d bytes): %w", path, n, ErrKeyFile)
	}
	return newLocal(path, key[:MasterKeySize])
}

func newLocal(path string, key []byte) (*Local, error) {
	sum := sha256.Sum256(key)
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return &Local{path: path, keyID: ProviderLocal + ":" + hex.EncodeToString(sum[:8]), master: aead}, nil
}

// keyFileError classifies an error about the key file or its directory:
// what the user must fix (missing, permission, a file where a directory
// should be, read-only file system) wraps ErrKeyFile; the rest (EIO, ENOSPC)
// is transient.
func keyFileError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) ||
		errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) ||
		errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.ELOOP) {
		return fmt.Errorf("local key file %s: %w: %w", path, ErrKeyFile, err)
	}
	return fmt.Errorf("local key file %s: %w", path, err)
}

// EnsureLocal loads the master key file at path, creating it first if it
// does not exist: 32 bytes from crypto/rand, mode 0600, in a directory
// created with mode 0700 (its parents 0755). Creation is race-safe across
// goroutines and processes sharing the file system: the key is written and
// synced under a temporary name and hard-linked into place, so every caller
// ends up with the one key that won. Errors are LoadLocal's.
func EnsureLocal(path string) (*Local, error) {
	for range 3 {
		l, err := LoadLocal(path)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return l, err
		}
		if err := createKeyFile(path); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		// Created by us or by a concurrent worker: load whichever won.
	}
	return LoadLocal(path)
}

func createKeyFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return keyFileError(path, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return keyFileError(path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return keyFileError(path, err)
	}
	defer os.Remove(tmp.Name())
	key := make([]byte, MasterKeySize)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		tmp.Close()
		return fmt.Errorf("local key file %s: random key: %w", path, err)
	}
	_, err = tmp.Write(key)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return keyFileError(path, err)
	}
	// link, unlike rename, never replaces a key another worker already uses.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return keyFileError(path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: the key is already readable by this process
		d.Close()
	}
	return nil
}

// Name returns ProviderLocal.
func (l *Local) Name() string { return ProviderLocal }

// KeyID returns "local:" and the first 16 hex digits of SHA-256 of the
// master key.
func (l *Local) KeyID() string { return l.keyID }

// Path returns the key file the key was read from.
func (l *Local) Path() string { return l.path }

// GenerateDataKey returns a fresh data key and its 60-byte wrapping (nonce,
// AES-256-GCM ciphertext and tag) under the master key, bound to encCtx.
func (l *Local) GenerateDataKey(_ context.Context, encCtx map[string]string) (plaintext, wrapped []byte, err error) {
	aad, err := encodeContext(encCtx)
	if err != nil {
		return nil, nil, err
	}
	buf := make([]byte, DataKeySize+nonceSize)
	if _, err := rand.Read(buf); err != nil {
		return nil, nil, fmt.Errorf("random data key: %w", err)
	}
	plaintext, nonce := buf[:DataKeySize], buf[DataKeySize:]
	wrapped = make([]byte, nonceSize, wrappedSize)
	copy(wrapped, nonce)
	wrapped = l.master.Seal(wrapped, nonce, plaintext, aad)
	return plaintext, wrapped, nil
}

// Decrypt unwraps a data key made by GenerateDataKey. A keyID other than
// KeyID fails with ErrWrongKey naming both; a wrapping that does not
// authenticate under this key and encCtx fails with ErrTampered.
func (l *Local) Decrypt(_ context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	if keyID != l.keyID {
		return nil, fmt.Errorf("object was encrypted with %s, key file %s holds %s: %w", keyID, l.path, l.keyID, ErrWrongKey)
	}
	if len(wrapped) != wrappedSize {
		return nil, fmt.Errorf("wrapped data key of %d bytes, want %d: %w", len(wrapped), wrappedSize, ErrTampered)
	}
	aad, err := encodeContext(encCtx)
	if err != nil {
		return nil, err
	}
	key, err := l.master.Open(nil, wrapped[:nonceSize], wrapped[nonceSize:], aad)
	if err != nil {
		return nil, fmt.Errorf("data key does not authenticate under %s with this encryption context: %w", l.keyID, ErrTampered)
	}
	return key, nil
}
