package encrypt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/v1.enc")

// sentinels are the errors a damaged envelope may give; any other error
// (or none) means damage went unnoticed or unexplained.
var sentinels = []error{ErrNotEnvelope, ErrUnsupportedVersion, ErrTruncated, ErrTampered, ErrWrongKey, ErrUnknownProvider}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func TestSealOpenRoundTrip(t *testing.T) {
	ctx := context.Background()
	l := testLocal(t)
	cases := []struct {
		name   string
		encCtx map[string]string
		body   []byte
	}{
		// An empty batch still makes a valid envelope (only the tag).
		{name: "empty body", encCtx: EncryptionContext("d1", "k"), body: nil},
		{name: "object", encCtx: EncryptionContext("0123456789abcdef0123456789abcdef", "AWSLogs/111122223333/GuardDuty/us-east-1/2026/03/14/20260314T120000Z-new-00112233aabbccdd.jsonl.gz"), body: []byte("\x1f\x8b gzip bytes")},
		// KMS allows no context; the format must too.
		{name: "no encryption context", encCtx: nil, body: []byte("x")},
		// Non-ASCII and empty values survive the length-prefixed encoding.
		{name: "unicode context", encCtx: map[string]string{"ключ": "значение ✓", "empty": ""}, body: []byte("y")},
		{name: "one megabyte", encCtx: EncryptionContext("d", "k"), body: bytes.Repeat([]byte{0xa5}, 1<<20)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sealed, err := Seal(ctx, l, tc.encCtx, tc.body)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if len(tc.body) > 8 && bytes.Contains(sealed, tc.body) {
				t.Fatal("sealed envelope contains the plaintext")
			}
			provider, keyID, encCtx, err := Header(sealed)
			if err != nil {
				t.Fatalf("Header: %v", err)
			}
			if provider != ProviderLocal || keyID != l.KeyID() || !maps.Equal(encCtx, tc.encCtx) && len(encCtx)+len(tc.encCtx) > 0 {
				t.Fatalf("Header = %s %s %v, want %s %s %v", provider, keyID, encCtx, ProviderLocal, l.KeyID(), tc.encCtx)
			}
			got, err := Open(ctx, Providers(l), sealed)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tc.body) {
				t.Fatalf("Open returned %d bytes, want %d", len(got), len(tc.body))
			}
		})
	}
}

func TestSealUsesFreshKeys(t *testing.T) {
	// Two seals of the same body must share nothing secret: fresh data key
	// and nonce per object.
	l := testLocal(t)
	a, err := Seal(context.Background(), l, EncryptionContext("d", "k"), []byte("same body"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Seal(context.Background(), l, EncryptionContext("d", "k"), []byte("same body"))
	if err != nil {
		t.Fatal(err)
	}
	ha, _ := parseHeader(a)
	hb, _ := parseHeader(b)
	if bytes.Equal(ha.wrapped, hb.wrapped) || bytes.Equal(ha.nonce, hb.nonce) || bytes.Equal(a[ha.size:], b[hb.size:]) {
		t.Fatal("two seals share a wrapped key, nonce or ciphertext")
	}
}

// fieldOffsets returns the offset of one byte inside each field of a sealed
// envelope, walking the documented layout independently of parseHeader.
func fieldOffsets(t *testing.T, e []byte) map[string]int {
	t.Helper()
	off := map[string]int{"magic": 0, "version": 6, "provider length": 7, "provider": 8}
	i := 8 + int(e[7])
	off["key id length"] = i  // high byte: a flip there points past the end
	off["key id"] = i + 2 + 6 // past "local:", inside the hex digits
	i += 2 + int(binary.BigEndian.Uint16(e[i:]))
	off["context count"] = i
	n := int(binary.BigEndian.Uint16(e[i:]))
	i += 2
	if n == 0 {
		t.Fatal("test envelope needs an encryption context")
	}
	off["context key"] = i + 2
	i += 2 + int(binary.BigEndian.Uint16(e[i:]))
	off["context value"] = i + 2
	for range 2*n - 1 {
		i += 2 + int(binary.BigEndian.Uint16(e[i:]))
	}
	off["wrapped key length"] = i
	off["wrapped key"] = i + 2 + 20
	i += 2 + int(binary.BigEndian.Uint16(e[i:]))
	off["nonce length"] = i
	off["nonce"] = i + 1 + 5
	i += 1 + nonceSize
	off["ciphertext length"] = i + 7
	i += 8
	off["ciphertext"] = i + 1
	off["tag"] = len(e) - 1
	return off
}

func TestOpenDetectsTampering(t *testing.T) {
	ctx := context.Background()
	l := testLocal(t)
	sealed, err := Seal(ctx, l, EncryptionContext("dest-1", "AWSLogs/x.jsonl.gz"), []byte("gzip bytes of a batch"))
	if err != nil {
		t.Fatal(err)
	}
	off := fieldOffsets(t, sealed)
	cases := []struct {
		name  string
		field string
		mask  byte // bits flipped; 0x01 when zero
		want  error
	}{
		{name: "magic", field: "magic", want: ErrNotEnvelope},
		{name: "version", field: "version", want: ErrUnsupportedVersion},
		// A shorter name makes the rest of the header misread: lengths run past the end.
		{name: "provider length", field: "provider length", want: ErrTruncated},
		{name: "provider", field: "provider", want: ErrUnknownProvider},
		// 2-byte lengths grown by 32768 point past the end: a cut file.
		{name: "key id length", field: "key id length", mask: 0x80, want: ErrTruncated},
		// An altered key id names another key; the local provider says so.
		{name: "key id", field: "key id", want: ErrWrongKey},
		{name: "context count", field: "context count", mask: 0x80, want: ErrTruncated},
		// The context is the wrapping's additional data.
		{name: "context key", field: "context key", want: ErrTampered},
		{name: "context value", field: "context value", want: ErrTampered},
		{name: "wrapped key length", field: "wrapped key length", mask: 0x80, want: ErrTruncated},
		{name: "wrapped key", field: "wrapped key", want: ErrTampered},
		{name: "nonce length", field: "nonce length", want: ErrTampered},
		{name: "nonce", field: "nonce", want: ErrTampered},
		// A smaller declared length leaves bytes over.
		{name: "ciphertext length", field: "ciphertext length", want: ErrTampered},
		{name: "ciphertext", field: "ciphertext", want: ErrTampered},
		{name: "tag", field: "tag", want: ErrTampered},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := bytes.Clone(sealed)
			mask := tc.mask
			if mask == 0 {
				mask = 0x01
			}
			bad[off[tc.field]] ^= mask
			_, err := Open(ctx, Providers(l), bad)
			if !errors.Is(err, tc.want) {
				t.Fatalf("flip in %s at byte %d: err = %v, want %v", tc.field, off[tc.field], err, tc.want)
			}
		})
	}
	// Every single-bit change anywhere must fail with an explained error.
	for i := range sealed {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(sealed)
			bad[i] ^= bit
			if _, err := Open(ctx, Providers(l), bad); !isSentinel(err) {
				t.Fatalf("flip %#x at byte %d: err = %v", bit, i, err)
			}
		}
	}
	// Bytes appended after the ciphertext are not silently ignored.
	if _, err := Open(ctx, Providers(l), append(bytes.Clone(sealed), 0)); !errors.Is(err, ErrTampered) {
		t.Fatalf("trailing byte: err = %v, want ErrTampered", err)
	}
}

func TestOpenTruncated(t *testing.T) {
	l := testLocal(t)
	sealed, err := Seal(context.Background(), l, EncryptionContext("d", "k"), []byte("some gzip bytes"))
	if err != nil {
		t.Fatal(err)
	}
	// Every prefix, from empty to one byte short, is a cut copy.
	for n := range len(sealed) {
		_, err := Open(context.Background(), Providers(l), sealed[:n])
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("first %d of %d bytes: err = %v, want ErrTruncated", n, len(sealed), err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyA, err := EnsureLocal(filepath.Join(dir, "a", "local-master.key"))
	if err != nil {
		t.Fatal(err)
	}
	keyB, err := EnsureLocal(filepath.Join(dir, "b", "local-master.key"))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := Seal(ctx, keyA, EncryptionContext("d", "k"), []byte("body"))
	if err != nil {
		t.Fatal(err)
	}
	v2 := bytes.Clone(sealed)
	v2[len(Magic)] = 2
	cases := []struct {
		name     string
		data     []byte
		resolver Resolver
		want     error
		mention  []string // what the message must name
	}{
		// A plain object handed to decrypt.
		{name: "gzip file", data: []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"), resolver: Providers(keyA), want: ErrNotEnvelope},
		// A short file that is not a magic prefix is not an envelope either.
		{name: "short non-envelope", data: []byte("{}"), resolver: Providers(keyA), want: ErrNotEnvelope},
		// A file from a newer gdexport.
		{name: "newer version", data: v2, resolver: Providers(keyA), want: ErrUnsupportedVersion, mention: []string{"version 2"}},
		// decrypt given another deployment's key file: both key ids named.
		{name: "wrong key file", data: sealed, resolver: Providers(keyB), want: ErrWrongKey, mention: []string{keyA.KeyID(), keyB.KeyID(), keyB.Path()}},
		// No provider of the envelope's kind (a KMS envelope without KMS).
		{name: "no provider", data: sealed, resolver: Providers(), want: ErrUnknownProvider, mention: []string{"local"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(ctx, tc.resolver, tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestSealOneProviderCall(t *testing.T) {
	ctx := context.Background()
	p := &countingProvider{KeyProvider: testLocal(t)}
	sealed, err := Seal(ctx, p, EncryptionContext("d", "k"), bytes.Repeat([]byte("finding\n"), 10000))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, func(string, string) (KeyProvider, error) { return p, nil }, sealed); err != nil {
		t.Fatal(err)
	}
	if g, d := p.generate.Load(), p.decrypt.Load(); g != 1 || d != 1 {
		t.Fatalf("GenerateDataKey called %d times, Decrypt %d; want 1 each", g, d)
	}
}

func TestSealRejectsBadFields(t *testing.T) {
	l := testLocal(t)
	cases := []struct {
		name   string
		encCtx map[string]string
	}{
		// The format has 2-byte lengths; longer strings must fail, not wrap.
		{name: "value too long", encCtx: map[string]string{"k": strings.Repeat("v", 1<<16)}},
		{name: "key too long", encCtx: map[string]string{strings.Repeat("k", 1<<16): "v"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Seal(context.Background(), l, tc.encCtx, []byte("x")); !errors.Is(err, ErrInvalidHeader) {
				t.Fatalf("err = %v, want ErrInvalidHeader", err)
			}
		})
	}
}

// goldenKey is the master key of testdata/v1.enc (a test key, nothing else).
const goldenKey = "8f1b0c6a4d2e9f7735a1c0b2d4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f801"

const goldenBody = "format version 1 must stay readable\n"

// TestGoldenEnvelope opens an envelope written by an earlier build, so a
// change that breaks reading existing .enc objects fails here. Run with
// -update to rewrite it after an intended format change (new version).
func TestGoldenEnvelope(t *testing.T) {
	key, err := hex.DecodeString(goldenKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "golden.key")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := LoadLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "v1.enc")
	if *update {
		sealed, err := Seal(context.Background(), l, EncryptionContext("golden-destination", "AWSLogs/111122223333/GuardDuty/us-east-1/2026/03/14/golden.jsonl.gz"), []byte(goldenBody))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, sealed, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	provider, keyID, encCtx, err := Header(data)
	if err != nil || provider != ProviderLocal || keyID != l.KeyID() || encCtx[ContextDestination] != "golden-destination" {
		t.Fatalf("Header = %s %s %v %v", provider, keyID, encCtx, err)
	}
	got, err := Open(context.Background(), Providers(l), data)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if string(got) != goldenBody {
		t.Fatalf("Open = %q, want %q", got, goldenBody)
	}
}

func FuzzOpen(f *testing.F) {
	key, _ := hex.DecodeString(goldenKey)
	l, err := newLocal("(in memory)", key)
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := Seal(context.Background(), l, EncryptionContext("d", "k"), []byte("seed"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add([]byte(Magic))
	f.Add([]byte("\x1f\x8b"))
	if golden, err := os.ReadFile(filepath.Join("testdata", "v1.enc")); err == nil {
		f.Add(golden)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Any input: no panic, and a failure is always an explained one.
		plain, err := Open(context.Background(), Providers(l), data)
		if err != nil && !isSentinel(err) {
			t.Fatalf("unexplained error: %v", err)
		}
		if err == nil && plain == nil {
			t.Fatal("Open succeeded without a body")
		}
		if _, _, _, herr := Header(data); err == nil && herr != nil {
			t.Fatalf("Open succeeded but Header failed: %v", herr)
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	l := testLocal(b)
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MB
	encCtx := EncryptionContext("0123456789abcdef0123456789abcdef", "AWSLogs/111122223333/GuardDuty/us-east-1/2026/03/14/20260314T120000Z-new-00112233aabbccdd.jsonl.gz")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Seal(context.Background(), l, encCtx, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	l := testLocal(b)
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MB
	sealed, err := Seal(context.Background(), l, EncryptionContext("d", "k"), body)
	if err != nil {
		b.Fatal(err)
	}
	resolve := Providers(l)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(context.Background(), resolve, sealed); err != nil {
			b.Fatal(err)
		}
	}
}
