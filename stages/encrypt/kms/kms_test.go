package kms

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"maps"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/stages/encrypt"
)

// fakeKMS wraps data keys by prefixing the encryption context's size; it
// fails every call with err when set.
type fakeKMS struct {
	err     error
	lastCtx map[string]string
	keys    map[string][]byte // blob → plaintext
}

func (f *fakeKMS) GenerateDataKey(_ context.Context, in *kms.GenerateDataKeyInput, _ ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	f.lastCtx = maps.Clone(in.EncryptionContext)
	key := make([]byte, 32)
	blob := make([]byte, 16)
	rand.Read(key)
	rand.Read(blob)
	f.keys[string(blob)] = bytes.Clone(key)
	return &kms.GenerateDataKeyOutput{Plaintext: key, CiphertextBlob: blob, KeyId: in.KeyId}, nil
}

func (f *fakeKMS) Decrypt(_ context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	if !maps.Equal(in.EncryptionContext, f.lastCtx) {
		return nil, &smithy.GenericAPIError{Code: "InvalidCiphertextException"}
	}
	return &kms.DecryptOutput{Plaintext: bytes.Clone(f.keys[string(in.CiphertextBlob)])}, nil
}

const keyArn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

func TestSealOpenThroughKMS(t *testing.T) {
	ctx := context.Background()
	f := &fakeKMS{keys: map[string][]byte{}}
	p := New(f, keyArn)
	encCtx := map[string]string{"bucket": "b", "key": "k", "destination": "d"}
	env, err := encrypt.Seal(ctx, p, encCtx, []byte("gzip bytes"))
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(f.lastCtx, encCtx) {
		t.Fatalf("KMS saw context %v, want %v", f.lastCtx, encCtx)
	}
	name, id, _, err := encrypt.Header(env)
	if err != nil || name != ProviderName || id != keyArn {
		t.Fatalf("header %s %s %v", name, id, err)
	}
	plain, err := encrypt.Open(ctx, encrypt.Providers(p), env)
	if err != nil || string(plain) != "gzip bytes" {
		t.Fatalf("open: %q %v", plain, err)
	}
	// An envelope of another key is refused before any call.
	if _, err := New(f, "arn:aws:kms:us-east-1:111122223333:key/00000000-12ab-34cd-56ef-1234567890ab").Decrypt(ctx, keyArn, nil, nil); !errors.Is(err, encrypt.ErrWrongKey) {
		t.Fatalf("err = %v, want ErrWrongKey", err)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name   string
		code   string
		access bool
	}{
		// The four faults DESIGN.md §2 names: the destination must be fixed.
		{"disabled", "DisabledException", true},
		{"pending deletion", "KMSInvalidStateException", true},
		{"missing", "NotFoundException", true},
		{"denied", "AccessDeniedException", true},
		// Bad credentials cannot heal by retrying either.
		{"unknown access key", "UnrecognizedClientException", true},
		// Throttling and KMS's own trouble heal by themselves.
		{"throttled", "ThrottlingException", false},
		{"internal", "KMSInternalException", false},
		{"unavailable", "KeyUnavailableException", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeKMS{err: &smithy.GenericAPIError{Code: tc.code}}
			_, _, err := New(f, keyArn).GenerateDataKey(context.Background(), nil)
			if pipeline.IsAccess(err) != tc.access {
				t.Fatalf("err = %v, access %v, want %v", err, pipeline.IsAccess(err), tc.access)
			}
		})
	}
	// Decrypt's own codes say what is wrong with the object.
	f := &fakeKMS{err: &smithy.GenericAPIError{Code: "IncorrectKeyException"}}
	if _, err := New(f, keyArn).Decrypt(context.Background(), keyArn, []byte{1}, nil); !errors.Is(err, encrypt.ErrWrongKey) {
		t.Fatalf("err = %v, want ErrWrongKey", err)
	}
	f.err = &smithy.GenericAPIError{Code: "InvalidCiphertextException"}
	if _, err := New(f, keyArn).Decrypt(context.Background(), keyArn, []byte{1}, nil); !errors.Is(err, encrypt.ErrTampered) {
		t.Fatalf("err = %v, want ErrTampered", err)
	}
}

func TestForDestination(t *testing.T) {
	k, err := NewKeys(WithRegion("eu-west-1"))
	if err != nil {
		t.Fatal(err)
	}
	// A bare key id without any endpoint override is a destination to fix.
	if _, err := k.ForDestination(&pipeline.Destination{ID: "d", KmsKeyArn: "just-a-name"}); !pipeline.IsAccess(err) {
		t.Fatalf("err = %v, want an access error", err)
	}
	p, err := k.ForDestination(&pipeline.Destination{ID: "d", KmsKeyArn: keyArn})
	if err != nil || p.KeyID() != keyArn || p.Name() != ProviderName {
		t.Fatalf("provider %v, %v", p, err)
	}
	if _, err := NewKeys(WithRegion("nowhere")); !errors.Is(err, ErrOption) {
		t.Fatalf("err = %v, want ErrOption", err)
	}
}
