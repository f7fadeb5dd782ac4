package encrypt

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Magic starts every envelope file; FormatVersion is the version Seal writes
// and the only one Open reads.
const (
	Magic         = "GDXENV"
	FormatVersion = 1
)

// DataKeySize is the size of a data key (AES-256).
const DataKeySize = 32

const (
	nonceSize = 12
	tagSize   = 16
)

var (
	// ErrNotEnvelope means the data does not start with Magic: it is not an
	// envelope file (a plain .jsonl.gz, for example).
	ErrNotEnvelope = errors.New("not an envelope-encrypted file")
	// ErrUnsupportedVersion means the envelope has a format version this
	// build cannot read.
	ErrUnsupportedVersion = errors.New("unsupported envelope format version")
	// ErrTruncated means the envelope ends before its header or its declared
	// ciphertext does: an incomplete copy or download.
	ErrTruncated = errors.New("envelope file is truncated")
	// ErrTampered means the envelope is complete but does not authenticate or
	// is inconsistent: some byte of it was altered.
	ErrTampered = errors.New("envelope file was altered or damaged")
	// ErrWrongKey means the envelope's data key was wrapped by a key the
	// provider does not hold (another local key file, another KMS key).
	ErrWrongKey = errors.New("wrong key")
	// ErrUnknownProvider means no key provider of the envelope's provider
	// name is available to open it.
	ErrUnknownProvider = errors.New("unknown key provider")
	// ErrInvalidHeader means Seal was given header fields that do not fit the
	// format (an empty or too long provider name or key id, too many or too
	// long encryption context entries) or a provider returned a data key of
	// the wrong size.
	ErrInvalidHeader = errors.New("invalid envelope header field")
)

// header is a parsed envelope header.
type header struct {
	provider string
	keyID    string
	encCtx   map[string]string
	wrapped  []byte
	nonce    []byte
	size     int // header length in bytes: the body's additional data
	bodyLen  uint64
}

// Seal encrypts plaintext into a self-contained envelope (see the package
// documentation for the layout): one call to p.GenerateDataKey for a fresh
// data key bound to encCtx, then AES-256-GCM of plaintext with the header as
// additional data. The plaintext data key is zeroed before Seal returns.
// Errors from the provider are returned wrapped (an unusable key wraps
// pipeline.ErrAccess); fields that do not fit the format wrap
// ErrInvalidHeader.
func Seal(ctx context.Context, p KeyProvider, encCtx map[string]string, plaintext []byte) ([]byte, error) {
	name, keyID := p.Name(), p.KeyID()
	if len(name) == 0 || len(name) > math.MaxUint8 {
		return nil, fmt.Errorf("key provider name %q: length %d not in 1..255: %w", name, len(name), ErrInvalidHeader)
	}
	if len(keyID) == 0 || len(keyID) > math.MaxUint16 {
		return nil, fmt.Errorf("key id of provider %s: length %d not in 1..65535: %w", name, len(keyID), ErrInvalidHeader)
	}
	ctxBytes, err := encodeContext(encCtx)
	if err != nil {
		return nil, err
	}
	dataKey, wrapped, err := p.GenerateDataKey(ctx, encCtx)
	if err != nil {
		return nil, fmt.Errorf("generate data key with %s: %w", keyID, err)
	}
	defer clear(dataKey)
	if len(dataKey) != DataKeySize {
		return nil, fmt.Errorf("provider %s returned a %d-byte data key, want %d: %w", name, len(dataKey), DataKeySize, ErrInvalidHeader)
	}
	if len(wrapped) == 0 || len(wrapped) > math.MaxUint16 {
		return nil, fmt.Errorf("provider %s returned a %d-byte wrapped key, want 1..65535: %w", name, len(wrapped), ErrInvalidHeader)
	}
	aead, err := newGCM(dataKey)
	if err != nil {
		return nil, err
	}
	bodyLen := len(plaintext) + tagSize
	hlen := len(Magic) + 1 + 1 + len(name) + 2 + len(keyID) + len(ctxBytes) + 2 + len(wrapped) + 1 + nonceSize + 8
	out := make([]byte, 0, hlen+bodyLen)
	out = append(out, Magic...)
	out = append(out, FormatVersion, byte(len(name)))
	out = append(out, name...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(keyID)))
	out = append(out, keyID...)
	out = append(out, ctxBytes...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(wrapped)))
	out = append(out, wrapped...)
	out = append(out, nonceSize)
	nonce := out[len(out) : len(out)+nonceSize]
	out = out[:len(out)+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("envelope nonce: %w", err)
	}
	out = binary.BigEndian.AppendUint64(out, uint64(bodyLen))
	return aead.Seal(out, nonce, plaintext, out), nil
}

// Open decrypts an envelope made by Seal. resolve returns the key provider
// for the envelope's provider name and key id; the provider unwraps the data
// key (one call) and the body is authenticated against the whole header.
// Errors wrap ErrNotEnvelope, ErrUnsupportedVersion, ErrTruncated,
// ErrTampered, ErrWrongKey or what resolve and the provider return (such as
// ErrUnknownProvider or an access error wrapping pipeline.ErrAccess).
func Open(ctx context.Context, resolve Resolver, data []byte) ([]byte, error) {
	h, err := parseHeader(data)
	if err != nil {
		return nil, err
	}
	p, err := resolve(h.provider, h.keyID)
	if err != nil {
		return nil, fmt.Errorf("key provider %s for key %s: %w", h.provider, h.keyID, err)
	}
	if p.Name() != h.provider {
		return nil, fmt.Errorf("resolver returned provider %s for an envelope of provider %s: %w", p.Name(), h.provider, ErrUnknownProvider)
	}
	dataKey, err := p.Decrypt(ctx, h.keyID, h.wrapped, h.encCtx)
	if err != nil {
		return nil, fmt.Errorf("unwrap data key with %s: %w", h.keyID, err)
	}
	defer clear(dataKey)
	if len(dataKey) != DataKeySize {
		return nil, fmt.Errorf("provider %s unwrapped a %d-byte data key, want %d: %w", h.provider, len(dataKey), DataKeySize, ErrTampered)
	}
	aead, err := newGCM(dataKey)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, h.nonce, data[h.size:], data[:h.size])
	if err != nil {
		return nil, fmt.Errorf("body does not authenticate under its data key: %w", ErrTampered)
	}
	return plain, nil
}

// Header returns an envelope's key provider name, key id and encryption
// context without decrypting anything, for tools that must find the key
// first (gdexport decrypt) or check that an object is what its name says.
// The header is not authenticated until Open succeeds. Errors wrap
// ErrNotEnvelope, ErrUnsupportedVersion, ErrTruncated or ErrTampered.
func Header(data []byte) (provider, keyID string, encCtx map[string]string, err error) {
	h, err := parseHeader(data)
	if err != nil {
		return "", "", nil, err
	}
	return h.provider, h.keyID, h.encCtx, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes key of %d bytes: %w", len(key), err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("aes-gcm: %w", err)
	}
	return aead, nil
}

// encodeContext encodes an encryption context as the format stores it: a
// 2-byte count, then the pairs sorted by key, each string with a 2-byte
// length. The same bytes are the local provider's additional data.
func encodeContext(encCtx map[string]string) ([]byte, error) {
	if len(encCtx) > math.MaxUint16 {
		return nil, fmt.Errorf("encryption context has %d entries, at most 65535: %w", len(encCtx), ErrInvalidHeader)
	}
	keys := make([]string, 0, len(encCtx))
	size := 2
	for k, v := range encCtx {
		if len(k) > math.MaxUint16 || len(v) > math.MaxUint16 {
			return nil, fmt.Errorf("encryption context entry %.40q: key or value longer than 65535 bytes: %w", k, ErrInvalidHeader)
		}
		keys = append(keys, k)
		size += 4 + len(k) + len(v)
	}
	slices.Sort(keys)
	out := make([]byte, 0, size)
	out = binary.BigEndian.AppendUint16(out, uint16(len(keys)))
	for _, k := range keys {
		out = binary.BigEndian.AppendUint16(out, uint16(len(k)))
		out = append(out, k...)
		out = binary.BigEndian.AppendUint16(out, uint16(len(encCtx[k])))
		out = append(out, encCtx[k]...)
	}
	return out, nil
}

// reader walks a header; any read past the end records ErrTruncated.
type reader struct {
	data  []byte
	off   int
	field string // the field being read, for the error
	short bool
}

func (r *reader) bytes(n int) []byte {
	if r.short || n > len(r.data)-r.off {
		r.short = true
		return nil
	}
	b := r.data[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) u8() int {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return int(b[0])
}

func (r *reader) u16() int {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(b))
}

func (r *reader) u64() uint64 {
	b := r.bytes(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// read reads the field named by field with f, and reports whether the data
// held it.
func (r *reader) read(field string, f func()) bool {
	if r.short {
		return false
	}
	r.field = field
	f()
	return !r.short
}

func parseHeader(data []byte) (*header, error) {
	if len(data) < len(Magic) {
		if len(data) == 0 || bytes.HasPrefix([]byte(Magic), data) {
			return nil, fmt.Errorf("%d bytes, shorter than the envelope magic: %w", len(data), ErrTruncated)
		}
		return nil, ErrNotEnvelope
	}
	if string(data[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("starts with % x, not %q: %w", data[:len(Magic)], Magic, ErrNotEnvelope)
	}
	r := &reader{data: data, off: len(Magic)}
	h := &header{}
	var version int
	r.read("format version", func() { version = r.u8() })
	if !r.short && version != FormatVersion {
		return nil, fmt.Errorf("format version %d, this build reads %d: %w", version, FormatVersion, ErrUnsupportedVersion)
	}
	var ctxCount, nonceLen int
	r.read("key provider", func() { h.provider = string(r.bytes(r.u8())) })
	r.read("key id", func() { h.keyID = string(r.bytes(r.u16())) })
	r.read("encryption context", func() {
		ctxCount = r.u16()
		h.encCtx = make(map[string]string, ctxCount)
	})
	prev := ""
	for i := 0; i < ctxCount && !r.short; i++ {
		var k, v string
		r.read("encryption context", func() {
			k = string(r.bytes(r.u16()))
			v = string(r.bytes(r.u16()))
		})
		if r.short {
			break
		}
		if i > 0 && k <= prev {
			return nil, fmt.Errorf("encryption context key %q out of order after %q: %w", k, prev, ErrTampered)
		}
		prev = k
		h.encCtx[k] = v
	}
	r.read("wrapped data key", func() { h.wrapped = r.bytes(r.u16()) })
	r.read("nonce", func() {
		nonceLen = r.u8()
		h.nonce = r.bytes(nonceLen)
	})
	r.read("ciphertext length", func() { h.bodyLen = r.u64() })
	if r.short {
		return nil, fmt.Errorf("header ends in its %s field at byte %d: %w", r.field, len(data), ErrTruncated)
	}
	switch {
	case h.provider == "":
		return nil, fmt.Errorf("empty key provider name: %w", ErrTampered)
	case h.keyID == "":
		return nil, fmt.Errorf("empty key id: %w", ErrTampered)
	case len(h.wrapped) == 0:
		return nil, fmt.Errorf("empty wrapped data key: %w", ErrTampered)
	case nonceLen != nonceSize:
		return nil, fmt.Errorf("nonce of %d bytes, want %d: %w", nonceLen, nonceSize, ErrTampered)
	case h.bodyLen < tagSize:
		return nil, fmt.Errorf("ciphertext length %d is shorter than its tag: %w", h.bodyLen, ErrTampered)
	}
	h.size = r.off
	have := uint64(len(data) - r.off)
	switch {
	case have < h.bodyLen:
		return nil, fmt.Errorf("ciphertext has %d of %d bytes: %w", have, h.bodyLen, ErrTruncated)
	case have > h.bodyLen:
		return nil, fmt.Errorf("%d bytes after the %d-byte ciphertext: %w", have-h.bodyLen, h.bodyLen, ErrTampered)
	}
	return h, nil
}
