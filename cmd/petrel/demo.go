package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-vpn/petrel/keylog"
	"github.com/petrel-vpn/petrel/node"
)

func init() { subcommands = append(subcommands, newDemoCmd) }

func newDemoCmd() *cobra.Command {
	var keylogDir string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run two petrel peers on loopback and send HTTP through their ESP tunnel (no root)",
		Long: `demo starts two petrel peers in this process on 127.0.0.1 with free UDP
ports, each protecting a gVisor netstack (no root, no TUN), establishes an IKE
SA and a Child SA (PSK, X25519, AES-GCM-256, ESP in UDP), fetches a page over
HTTP from the far side's netstack through ESP, prints the session detail and
the time from start to first byte through the tunnel, deletes the SAs and
exits 0. With --keylog DIR it writes Wireshark's ikev2_decryption_table and
esp_sa tables into DIR.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), cmd.OutOrStdout(), keylogDir, verbose)
		},
	}
	cmd.Flags().StringVar(&keylogDir, "keylog", "", "write Wireshark key tables (session secrets!) into this folder")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log what both peers do to stderr")
	return cmd
}

func runDemo(ctx context.Context, w io.Writer, keylogDir string, verbose bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	start := time.Now()
	step := func(format string, args ...any) {
		fmt.Fprintf(w, "[%7.2f ms] %s\n", float64(time.Since(start).Microseconds())/1000, fmt.Sprintf(format, args...))
	}
	log := slog.New(slog.DiscardHandler)
	if verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	dir, err := os.MkdirTemp("", "petrel-demo-")
	if err != nil {
		return fmt.Errorf("demo: temporary folder: %w", err)
	}
	defer os.RemoveAll(dir)
	pa, pb, err := node.WriteLoopbackPair(dir, node.LoopbackOptions{})
	if err != nil {
		return fmt.Errorf("demo: configuration: %w", err)
	}
	opts := node.Options{Config: pa.Config, Logger: log.With("peer", "a"), NoRawESP: true}
	if keylogDir != "" {
		kl, err := keylog.Open(keylogDir)
		if err != nil {
			return fmt.Errorf("demo: key log: %w", err)
		}
		defer kl.Close()
		opts.KeyLog = kl
	}
	b, err := node.New(node.Options{Config: pb.Config, Logger: log.With("peer", "b"), NoRawESP: true})
	if err != nil {
		return fmt.Errorf("demo: starting peer b: %w", err)
	}
	defer b.Close(context.Background())
	a, err := node.New(opts)
	if err != nil {
		return fmt.Errorf("demo: starting peer a: %w", err)
	}
	defer a.Close(context.Background())
	step("peer a: IKE %v, NAT-T 127.0.0.1:%d, protects %s (netstack %s)", a.IKEAddrs()[0], a.NATTPort(), pa.Inner, pa.Addr)
	step("peer b: IKE %v, NAT-T 127.0.0.1:%d, protects %s (netstack %s)", b.IKEAddrs()[0], b.NATTPort(), pb.Inner, pb.Addr)

	nsA, err := a.AttachNetstack([]netip.Addr{netip.MustParseAddr(pa.Addr)}, 1400)
	if err != nil {
		return fmt.Errorf("demo: netstack a: %w", err)
	}
	nsB, err := b.AttachNetstack([]netip.Addr{netip.MustParseAddr(pb.Addr)}, 1400)
	if err != nil {
		return fmt.Errorf("demo: netstack b: %w", err)
	}
	ln, err := nsB.ListenTCP(&net.TCPAddr{IP: net.ParseIP(pb.Addr), Port: 80})
	if err != nil {
		return fmt.Errorf("demo: HTTP listener on b: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "hello %s, this is %s answering through ESP\n", r.RemoteAddr, pb.Addr)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	step("peer b: HTTP server on %s:80 (its netstack)", pb.Addr)

	upCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ev, err := a.Up(upCtx, "b")
	if err != nil {
		return fmt.Errorf("demo: establishing the tunnel: %w", err)
	}
	step("IKE SA %s/%s and Child SA %q (SPIs in %s, out %s) established", ev.SPIi, ev.SPIr, ev.Child, ev.InSPI, ev.OutSPI)

	var firstByte time.Time
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { firstByte = time.Now() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(upCtx, trace), http.MethodGet, "http://"+pb.Addr+"/", nil)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: nsA.DialContext}, Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("demo: HTTP through the tunnel: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("demo: reading the HTTP answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK || firstByte.IsZero() {
		return errors.New("demo: HTTP through the tunnel: " + resp.Status)
	}
	step("GET http://%s/ from %s: %s, %q", pb.Addr, pa.Addr, resp.Status, string(body))

	sessions, err := a.Sessions()
	if err != nil {
		return fmt.Errorf("demo: sessions: %w", err)
	}
	fmt.Fprintln(w, "\n$ petrel sessions --detail   (peer a)")
	if err := writeSessionDetail(w, sessions); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nTime from start to first byte through the tunnel: %.1f ms\n", float64(firstByte.Sub(start).Microseconds())/1000)
	if keylogDir != "" {
		fmt.Fprintf(w, "Wireshark key tables: %s/%s and %s/%s\n", keylogDir, keylog.IKEFile, keylogDir, keylog.ESPFile)
	}

	events, stop := b.Subscribe()
	defer stop()
	closeCtx, cancelClose := context.WithTimeout(ctx, 5*time.Second)
	defer cancelClose()
	if err := a.Close(closeCtx); err != nil {
		return fmt.Errorf("demo: closing peer a: %w", err)
	}
	for {
		select {
		case e := <-events:
			if e.Kind == "ike-down" {
				step("peer a deleted its SAs; peer b saw the delete (%s)", e.Reason)
				return nil
			}
		case <-closeCtx.Done():
			return errors.New("demo: peer b did not see peer a's delete")
		}
	}
}
