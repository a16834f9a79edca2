package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/petrel-vpn/petrel/ike"
	"github.com/petrel-vpn/petrel/node"
)

// Node is what the API drives (a *node.Node).
type Node interface {
	Connections() ([]node.ConnInfo, error)
	Sessions() ([]node.Session, error)
	Up(ctx context.Context, name string) (node.Event, error)
	Down(ctx context.Context, name string) (int, error)
	DownNow(name string) (int, error)
	Subscribe() (<-chan node.Event, func())
}

// Server serves the control API.
type Server struct {
	Node Node
	// Reload re-reads the configuration and applies it (what SIGHUP does).
	Reload func() (node.ReloadResult, error)
	Logger *slog.Logger
	// OpTimeout bounds up and down; 0 = 30 s.
	OpTimeout time.Duration
}

// UpResult is the answer to POST /v1/connections/NAME/up.
type UpResult struct {
	Conn  string     `json:"conn"`
	Event node.Event `json:"event"`
}

// DownResult is the answer to POST /v1/connections/NAME/down (with
// ?force=1: without waiting for the peer's answers).
type DownResult struct {
	Conn    string `json:"conn"`
	Deleted int    `json:"deleted"`
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/connections", func(w http.ResponseWriter, r *http.Request) {
		v, err := s.Node.Connections()
		s.reply(w, v, err)
	})
	mux.HandleFunc("GET /v1/sessions", func(w http.ResponseWriter, r *http.Request) {
		v, err := s.Node.Sessions()
		if v == nil {
			v = []node.Session{}
		}
		s.reply(w, v, err)
	})
	mux.HandleFunc("POST /v1/connections/{name}/up", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.timeout())
		defer cancel()
		name := r.PathValue("name")
		ev, err := s.Node.Up(ctx, name)
		s.reply(w, UpResult{Conn: name, Event: ev}, err)
	})
	mux.HandleFunc("POST /v1/connections/{name}/down", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.timeout())
		defer cancel()
		name := r.PathValue("name")
		var n int
		var err error
		if r.URL.Query().Get("force") == "1" {
			n, err = s.Node.DownNow(name)
		} else {
			n, err = s.Node.Down(ctx, name)
		}
		s.reply(w, DownResult{Conn: name, Deleted: n}, err)
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		if s.Reload == nil {
			s.reply(w, nil, errors.New("daemon: reload is not available"))
			return
		}
		res, err := s.Reload()
		s.reply(w, res, err)
	})
	mux.HandleFunc("GET /v1/events", s.events)
	return mux
}

func (s *Server) timeout() time.Duration {
	if s.OpTimeout > 0 {
		return s.OpTimeout
	}
	return 30 * time.Second
}

func (s *Server) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// reply writes v as JSON, or err as {"error": ...} with a status that says
// whose fault it was.
func (s *Server) reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, ike.ErrUnknownConnection), errors.Is(err, node.ErrNoSA):
			code = http.StatusNotFound
		case errors.Is(err, context.DeadlineExceeded):
			code = http.StatusGatewayTimeout
		default:
			if _, ok := errors.AsType[*node.SetupError](err); ok {
				code = http.StatusBadGateway
			}
		}
		s.log().Info("control: request failed", "err", err)
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

// events streams SA events as server-sent events (one "data:" JSON line
// per event, event: KIND), with a comment line every 15 s as keepalive.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		s.reply(w, nil, errors.New("daemon: streaming unsupported"))
		return
	}
	ch, cancel := s.Node.Subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": petrel events\n\n")
	fl.Flush()
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return
			}
			b, _ := json.Marshal(e)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Kind, b)
			fl.Flush()
		case <-tick.C:
			fmt.Fprint(w, ": keepalive\n\n")
			fl.Flush()
		case <-r.Context().Done():
			return
		}
	}
}

// Listen creates the unix socket at path with mode 0660 (root and the
// socket's group), its folder with 0755 if missing, replacing a stale
// socket left by a crashed daemon but refusing one a live daemon answers on.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("daemon: control socket folder: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("daemon: another daemon answers on %s", path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("daemon: control socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("daemon: control socket mode: %w", err)
	}
	return ln, nil
}
