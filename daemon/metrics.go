package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/petrel-vpn/petrel/node"
)

// StatsSource is what metrics read at each scrape (a *node.Node).
type StatsSource interface {
	Sessions() ([]node.Session, error)
	Stats() node.Stats
}

// collector turns a node's sessions and counters into Prometheus metrics at
// scrape time, so nothing is counted twice and nothing goes stale.
type collector struct {
	src StatsSource
}

var (
	descSAs       = prometheus.NewDesc("petrel_ike_sas", "IKE SAs by state (established, connecting: half-open, deleting: a Delete in flight).", []string{"state"}, nil)
	descChildSAs  = prometheus.NewDesc("petrel_child_sas", "Installed Child SA pairs.", nil, nil)
	descSetups    = prometheus.NewDesc("petrel_setups_total", "SAs established, by kind (ike, child).", []string{"kind"}, nil)
	descFailures  = prometheus.NewDesc("petrel_setup_failures_total", "SA setups that failed, by scope (ike, child) and reason.", []string{"scope", "reason"}, nil)
	descCookies   = prometheus.NewDesc("petrel_cookie_challenges_sent_total", "COOKIE challenges sent (RFC 7296 §2.6).", nil, nil)
	descIKEDrops  = prometheus.NewDesc("petrel_ike_dropped_total", "IKE messages dropped, by reason.", []string{"reason"}, nil)
	descRetrans   = prometheus.NewDesc("petrel_ike_retransmissions_total", "IKE requests sent again.", nil, nil)
	descBytes     = prometheus.NewDesc("petrel_esp_bytes_total", "ESP payload bytes, by direction (in, out).", []string{"dir"}, nil)
	descPackets   = prometheus.NewDesc("petrel_esp_packets_total", "ESP packets, by direction (in, out).", []string{"dir"}, nil)
	descESPDrops  = prometheus.NewDesc("petrel_esp_dropped_total", "Inbound ESP packets dropped, by reason (replay, integrity, invalid, policy).", []string{"reason"}, nil)
	descRekeys    = prometheus.NewDesc("petrel_rekeys_total", "Completed rekeys, by kind (ike, child).", []string{"kind"}, nil)
	descDPD       = prometheus.NewDesc("petrel_dpd_events_total", "Liveness (DPD) events, by event (peer_dead: liveness checks went unanswered, RFC 7296 §2.4).", []string{"event"}, nil)
	descCertFetch = prometheus.NewDesc("petrel_cert_fetches_total", "Certificate fetches (CRL, OCSP, hash-and-URL) not answered from memory, by result (started; joined: an ask for a fetch under way; refused: an ask beyond the bound on fetches under way; no_slot: a fetch that found no free connection before its deadline).", []string{"result"}, nil)
	descQueueDrop = prometheus.NewDesc("petrel_ike_queue_dropped_total", "IKE datagrams dropped because the event loop was overloaded.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSAs, descChildSAs, descSetups, descFailures, descCookies, descIKEDrops,
		descRetrans, descBytes, descPackets, descESPDrops, descQueueDrop, descRekeys, descDPD, descCertFetch} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	sessions, _ := c.src.Sessions()
	states := map[string]float64{"established": 0, "connecting": 0, "deleting": 0}
	var children float64
	in, out := st.RetiredIn, st.RetiredOut
	for _, s := range sessions {
		states[s.State]++
		children += float64(len(s.Children))
		for _, ch := range s.Children {
			in.Bytes += ch.BytesRx
			in.Packets += ch.PacketsRx
			out.Bytes += ch.BytesTx
			out.Packets += ch.PacketsTx
			in.ReplayDrops += ch.ReplayDrops
			in.AuthFailures += ch.AuthDrops
			in.InvalidDrops += ch.InvalidDrops
			in.PolicyDrops += ch.PolicyDrops
		}
	}
	for state, v := range states {
		ch <- prometheus.MustNewConstMetric(descSAs, prometheus.GaugeValue, v, state)
	}
	ch <- prometheus.MustNewConstMetric(descChildSAs, prometheus.GaugeValue, children)
	ch <- prometheus.MustNewConstMetric(descSetups, prometheus.CounterValue, float64(st.IKEUp), "ike")
	ch <- prometheus.MustNewConstMetric(descSetups, prometheus.CounterValue, float64(st.ChildUp), "child")
	for k, v := range st.Failures {
		scope, reason, _ := cut(k)
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(v), scope, reason)
	}
	e := st.Endpoint
	ch <- prometheus.MustNewConstMetric(descCookies, prometheus.CounterValue, float64(e.CookiesSent))
	for reason, v := range map[string]uint64{"malformed": e.DroppedMalformed, "unknown_spi": e.DroppedUnknownSPI,
		"integrity": e.DroppedICV, "half_open_limit": e.DroppedHalfOpen} {
		ch <- prometheus.MustNewConstMetric(descIKEDrops, prometheus.CounterValue, float64(v), reason)
	}
	ch <- prometheus.MustNewConstMetric(descRetrans, prometheus.CounterValue, float64(e.Retransmitted))
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(in.Bytes), "in")
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(out.Bytes), "out")
	ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(in.Packets), "in")
	ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(out.Packets), "out")
	for reason, v := range map[string]uint64{"replay": in.ReplayDrops, "integrity": in.AuthFailures,
		"invalid": in.InvalidDrops, "policy": in.PolicyDrops} {
		ch <- prometheus.MustNewConstMetric(descESPDrops, prometheus.CounterValue, float64(v), reason)
	}
	ch <- prometheus.MustNewConstMetric(descQueueDrop, prometheus.CounterValue, float64(st.QueueDrops))
	ch <- prometheus.MustNewConstMetric(descRekeys, prometheus.CounterValue, float64(st.IKERekeys), "ike")
	ch <- prometheus.MustNewConstMetric(descRekeys, prometheus.CounterValue, float64(st.ChildRekeys), "child")
	ch <- prometheus.MustNewConstMetric(descDPD, prometheus.CounterValue, float64(st.PeerDead), "peer_dead")
	cf := st.CertFetches
	for result, v := range map[string]uint64{"started": cf.Started, "joined": cf.Joined, "refused": cf.Refused, "no_slot": cf.NoSlot} {
		ch <- prometheus.MustNewConstMetric(descCertFetch, prometheus.CounterValue, float64(v), result)
	}
}

func cut(k string) (string, string, bool) {
	for i := 0; i < len(k); i++ {
		if k[i] == ':' {
			return k[:i], k[i+1:], true
		}
	}
	return k, "", false
}

// MetricsHandler serves src's metrics plus Go runtime and process metrics.
func MetricsHandler(src StatsSource) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{src}, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// ServeMetrics listens on addr (host:port) and serves /metrics until the
// returned server is shut down.
func ServeMetrics(addr string, src StatsSource, log *slog.Logger) (*http.Server, net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("daemon: metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", MetricsHandler(src))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics: server", "err", err)
		}
	}()
	return srv, ln.Addr(), nil
}
