package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-vpn/petrel/config"
	"github.com/petrel-vpn/petrel/daemon"
	"github.com/petrel-vpn/petrel/keylog"
	"github.com/petrel-vpn/petrel/node"
)

func init() { subcommands = append(subcommands, newDaemonCmd) }

// defaultConfigFile is where `petrel daemon` looks without --config.
const defaultConfigFile = "/etc/petrel/petrel.yaml"

func newDaemonCmd() *cobra.Command {
	var file, socket string
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the petrel IKEv2 daemon in the foreground",
		Long: `daemon loads the configuration, binds the IKE and NAT-T sockets, starts the
data plane and the control API on a unix socket (mode 0660), and runs in the
foreground, logging with slog as daemon.log says. It initiates the children
whose start_action is start. SIGHUP (or petrel reload) re-reads the
configuration: new connections are added, removed ones torn down with
deletes, changed ones re-established, untouched SAs keep running. SIGTERM or
SIGINT deletes every SA with an INFORMATIONAL exchange, then exits. With
NOTIFY_SOCKET set (systemd Type=notify) it reports READY=1, RELOADING=1 and
STOPPING=1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDaemon(file, socket)
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", defaultConfigFile, "configuration file")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket (default: daemon.control_socket)")
	return cmd
}

func runDaemon(file, socket string) error {
	cfg, err := config.Load(file)
	if err != nil {
		return err
	}
	log, err := daemon.NewLogger(os.Stderr, cfg.Daemon.Log)
	if err != nil {
		return err
	}
	if socket == "" {
		socket = cfg.Daemon.ControlSocket
	}
	opts := node.Options{Config: cfg, Logger: log}
	if dir := cfg.Daemon.KeylogDir; dir != "" {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(filepath.Dir(cfg.File), dir)
		}
		kl, err := keylog.Open(dir)
		if err != nil {
			return err
		}
		defer kl.Close()
		opts.KeyLog = kl
		log.Warn("daemon: writing Wireshark key logs (session secrets)", "subsystem", "keylog", "dir", dir)
	}
	ln, err := daemon.Listen(socket)
	if err != nil {
		return err
	}
	defer os.Remove(socket)
	n, err := node.New(opts)
	if err != nil {
		ln.Close()
		return err
	}
	if err := attachDataPlane(n, cfg, log); err != nil {
		ln.Close()
		n.Close(context.Background())
		return err
	}

	var reloadMu sync.Mutex
	reload := func() (node.ReloadResult, error) {
		reloadMu.Lock()
		defer reloadMu.Unlock()
		_ = daemon.Notify("RELOADING=1")
		defer daemon.Notify("READY=1")
		nc, err := config.Load(file)
		if err != nil {
			log.Error("daemon: reload", "err", err)
			return node.ReloadResult{}, err
		}
		return n.Reload(nc)
	}
	api := &daemon.Server{Node: n, Reload: reload, Logger: log.With("subsystem", "control")}
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	var metrics *http.Server
	if addr := cfg.Daemon.MetricsListen; addr != "" {
		m, bound, err := daemon.ServeMetrics(addr, n, log.With("subsystem", "metrics"))
		if err != nil {
			srv.Close()
			n.Close(context.Background())
			return err
		}
		metrics = m
		log.Info("daemon: metrics", "subsystem", "metrics", "addr", bound.String())
	}
	ikeAddrs := n.IKEAddrs()
	log.Info("daemon: ready", "config", file, "socket", socket, "ike", fmt.Sprint(ikeAddrs), "natt_port", n.NATTPort(),
		"connections", len(cfg.Connections))
	if err := daemon.Notify("READY=1"); err != nil {
		log.Warn("daemon: sd_notify", "err", err)
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			if res, err := reload(); err == nil {
				log.Info("daemon: SIGHUP reload", "result", res.String())
			}
			continue
		}
		break
	}
	log.Info("daemon: shutting down: deleting SAs")
	_ = daemon.Notify("STOPPING=1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Close the node first: the event streams end when it does, so the
	// API server can then shut down without waiting for them.
	nerr := n.Close(ctx)
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
	}
	if metrics != nil {
		metrics.Close()
	}
	if nerr != nil && !errors.Is(nerr, context.DeadlineExceeded) {
		return fmt.Errorf("daemon: closing the data plane: %w", nerr)
	}
	log.Info("daemon: stopped")
	return nil
}

// attachDataPlane gives the data plane its device as daemon.dataplane says.
// The node has already chosen the backend (auto probes for in-kernel ESP and
// falls back to userspace, saying why; xfrm insists). netstack attaches no
// device (Go programs embedding petrel attach netstacks themselves); the
// userspace backend on TUN gets "petrel0" for policy-based children (root
// or CAP_NET_ADMIN), route-based children having their own devices; under
// XFRM the kernel needs no TUN and AttachTUN makes none.
func attachDataPlane(n *node.Node, cfg *config.Config, log *slog.Logger) error {
	if cfg.Daemon.Dataplane == "netstack" {
		log.Info("daemon: data plane: userspace without a device (netstack)", "subsystem", "dataplane")
		return nil
	}
	if err := n.AttachTUN("petrel0", 1400); err != nil {
		return fmt.Errorf("daemon: %w (userspace-tun needs root or CAP_NET_ADMIN; daemon.dataplane: netstack needs neither)", err)
	}
	log.Info("daemon: data plane", "subsystem", "dataplane", "backend", n.Backend())
	return nil
}
