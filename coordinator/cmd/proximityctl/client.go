package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// client talks to the operator API.
type client struct {
	base  string
	token string
	http  *http.Client
}

// apiError is an answer in problem+json (or any non-2xx answer).
type apiError struct {
	Type      string `json:"type"`
	Status    int    `json:"status"`
	Title     string `json:"title"`
	Detail    string `json:"detail"`
	RequestID string `json:"request_id"`
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("%d %s: %s", e.Status, e.Title, e.Detail)
	if e.RequestID != "" {
		msg += " (request " + e.RequestID + ")"
	}
	return msg
}

// newClient reads the address and token from the environment, or the
// session stored by login (see identity.go), and the way to trust the
// server from o and the environment; see connect.go.
func newClient(getenv func(string) string, o connOptions, timeout time.Duration, stderr io.Writer) (*client, error) {
	addr, token, sessionCA, err := withSession(getenv, getenv(envAddr), getenv(envToken))
	if err != nil {
		return nil, err
	}
	base, err := apiBase(addr)
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, fmt.Errorf("%s is not set, and no session is stored (see proximityctl login)", envToken)
	}
	cfg, err := tlsConfig(getenv, o, stderr)
	if err != nil {
		return nil, err
	}
	if err := addSessionCA(cfg, sessionCA); err != nil {
		return nil, err
	}
	return &client{base: base, token: token, http: newHTTPClient(cfg, timeout)}, nil
}

// do sends a request; a 2xx answer is decoded into out (if not nil).
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	_, err := c.doRaw(ctx, method, path, in, out)
	return err
}

// doRaw is do that also returns the body of a 2xx answer as it came.
func (c *client) doRaw(ctx context.Context, method, path string, in, out any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if c.token != "" { // none for POST /api/v1/login
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, explainTLS(c.base, err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		if err := json.Unmarshal(raw, e); err != nil || e.Detail == "" {
			e.Detail = strings.TrimSpace(string(raw))
		}
		return nil, e
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return raw, nil
}
