package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// DefaultTimeout bounds one POST.
const DefaultTimeout = 5 * time.Second

// ErrURL is returned by New for a URL that is not http(s)://host/….
var ErrURL = errors.New("invalid webhook URL")

// Poster posts JSON bodies to one URL. Safe for concurrent use.
type Poster struct {
	url    string
	client *http.Client
}

// New returns a Poster for rawURL; client nil means one with
// DefaultTimeout.
func New(rawURL string, client *http.Client) (*Poster, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w %q: expected http(s)://host[:port]/path", ErrURL, rawURL)
	}
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	return &Poster{url: rawURL, client: client}, nil
}

// Post sends body with Content-Type application/json and succeeds on any
// 2xx answer. It blocks at most the client's timeout (or until ctx ends).
func (p *Poster) Post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gdexport")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook POST: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook POST: answered %s", resp.Status)
	}
	return nil
}
