package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestPost(t *testing.T) {
	var got []byte
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s with %q", r.Method, r.Header.Get("Content-Type"))
		}
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	p, err := New(srv.URL+"/hook", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Post(context.Background(), []byte(`{"status":"PUBLISHING"}`)); err != nil || string(got) != `{"status":"PUBLISHING"}` {
		t.Fatalf("post: %v, body %q", err, got)
	}
	// A non-2xx answer is a failure to be retried.
	status = http.StatusServiceUnavailable
	if err := p.Post(context.Background(), []byte(`{}`)); err == nil {
		t.Fatal("a 503 answer succeeded")
	}
	for _, bad := range []string{"", "ftp://x/y", "http://", "not a url"} {
		if _, err := New(bad, nil); !errors.Is(err, ErrURL) {
			t.Errorf("New(%q): %v", bad, err)
		}
	}
}
