package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/petrel-vpn/petrel/node"
)

// Client talks to a daemon's control API on its unix socket.
type Client struct {
	Socket string
	http   *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{Socket: path, http: &http.Client{Transport: tr}}
}

// do sends a request and decodes the JSON answer into v; a failed request
// becomes one error line: the daemon's message, or why it was unreachable.
func (c *Client) do(ctx context.Context, method, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://petrel"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.failed(ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the daemon's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return errors.New(strings.TrimPrefix(e.Error, "node: "))
		}
		return fmt.Errorf("daemon answered %s", resp.Status)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			return fmt.Errorf("decoding the daemon's answer: %w", err)
		}
	}
	return nil
}

// failed explains a request that got no answer: the daemon could not be
// reached (nothing listens on the socket, no permission), or it was
// reached but did not answer before ctx ended (a `down` waiting for a peer
// that does not answer its DELETE), or the connection broke.
func (c *Client) failed(ctx context.Context, err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("cannot reach the petrel daemon at %s (is it running? --socket or PETREL_SOCKET): %v", c.Socket, op.Err)
	}
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("the petrel daemon at %s did not answer in time (--timeout); the operation may still complete", c.Socket)
		}
		return fmt.Errorf("request to the petrel daemon at %s cancelled", c.Socket)
	}
	return fmt.Errorf("the petrel daemon at %s did not answer: %v", c.Socket, err)
}

// Connections lists the configured connections.
func (c *Client) Connections(ctx context.Context) ([]node.ConnInfo, error) {
	var v []node.ConnInfo
	return v, c.do(ctx, http.MethodGet, "/v1/connections", &v)
}

// Sessions lists the IKE SAs with their Child SAs and counters.
func (c *Client) Sessions(ctx context.Context) ([]node.Session, error) {
	var v []node.Session
	return v, c.do(ctx, http.MethodGet, "/v1/sessions", &v)
}

// Up initiates a connection and waits for its Child SA.
func (c *Client) Up(ctx context.Context, name string) (UpResult, error) {
	var v UpResult
	return v, c.do(ctx, http.MethodPost, "/v1/connections/"+url.PathEscape(name)+"/up", &v)
}

// Down deletes a connection's IKE SAs and waits for the peer's answers.
func (c *Client) Down(ctx context.Context, name string) (DownResult, error) {
	var v DownResult
	return v, c.do(ctx, http.MethodPost, "/v1/connections/"+url.PathEscape(name)+"/down", &v)
}

// DownNow deletes a connection's IKE SAs without waiting for the peer: each
// Delete is sent once and the SAs are gone when it returns.
func (c *Client) DownNow(ctx context.Context, name string) (DownResult, error) {
	var v DownResult
	return v, c.do(ctx, http.MethodPost, "/v1/connections/"+url.PathEscape(name)+"/down?force=1", &v)
}

// Reload makes the daemon re-read its configuration.
func (c *Client) Reload(ctx context.Context) (node.ReloadResult, error) {
	var v node.ReloadResult
	return v, c.do(ctx, http.MethodPost, "/v1/reload", &v)
}

// Events streams SA events to f until ctx ends, f returns false or the
// daemon goes away (io.EOF).
func (c *Client) Events(ctx context.Context, f func(node.Event) bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://petrel/v1/events", nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.failed(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("daemon answered %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var e node.Event
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return fmt.Errorf("decoding an event: %w", err)
		}
		if !f(e) {
			return nil
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.EOF
}

// Wait polls the socket until the daemon answers or timeout passes.
func (c *Client) Wait(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := c.Connections(ctx)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
