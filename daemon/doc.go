// Package daemon is what `petrel daemon` runs around a node.Node: the
// control API (HTTP+JSON on a unix socket, mode 0660; docs/api.md) and its
// client for the CLI, Prometheus metrics, sd_notify readiness and the
// per-subsystem slog handler.
//
// The API follows Tailscale's localapi: a small set of versioned routes
// under /v1/, JSON bodies, errors as {"error": "..."} with an HTTP status,
// and a server-sent-events stream for SA events. Access control is the
// socket's file mode: root and the socket's group.
//
// daemon may import node, config, the standard library and
// prometheus/client_golang.
package daemon
