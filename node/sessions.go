package node

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/petrel-vpn/petrel/dataplane"
	"github.com/petrel-vpn/petrel/esp"
	"github.com/petrel-vpn/petrel/ike"
	"github.com/petrel-vpn/petrel/wire"
)

// Session is one IKE SA with its Child SAs: what `petrel sessions
// --detail` shows, after Cisco's `show vpn-sessiondb detail l2l` plus the
// IKEv2 specifics. Counters are read from the data plane.
type Session struct {
	Conn       string `json:"conn"`
	Index      int    `json:"index"`
	State      string `json:"state"` // established, connecting
	Role       string `json:"role"`  // initiator, responder
	Local      string `json:"local"`
	Remote     string `json:"remote"`
	Protocol   string `json:"protocol"`
	SPIi       string `json:"spi_i"`
	SPIr       string `json:"spi_r"`
	Encr       string `json:"encryption"`
	Integ      string `json:"hashing"`
	PRF        string `json:"prf"`
	DHGroup    string `json:"dh_group"`
	LocalID    string `json:"local_id"`
	RemoteID   string `json:"remote_id"`
	LocalAuth  string `json:"local_auth"`
	RemoteAuth string `json:"remote_auth"`

	// The certificates, for auth: pubkey (RFC 4514 names; empty for PSK).
	LocalCertSubject  string `json:"local_cert_subject,omitempty"`
	RemoteCertSubject string `json:"remote_cert_subject,omitempty"`
	RemoteCertIssuer  string `json:"remote_cert_issuer,omitempty"`

	NATT     bool      `json:"nat_t"`
	Login    time.Time `json:"login_time"`
	Duration int64     `json:"duration_s"`
	// RekeyIn is seconds until the configured IKE rekey_time (0 = none).
	RekeyIn      int64   `json:"rekey_in_s"`
	IKETunnels   int     `json:"ike_tunnels"`
	IPsecTunnels int     `json:"ipsec_tunnels"`
	BytesTx      uint64  `json:"bytes_tx"`
	BytesRx      uint64  `json:"bytes_rx"`
	PacketsTx    uint64  `json:"packets_tx"`
	PacketsRx    uint64  `json:"packets_rx"`
	Drops        uint64  `json:"drops"`
	Children     []Child `json:"children"`
}

// Child is one installed Child SA pair.
type Child struct {
	Name         string    `json:"name"`
	Mode         string    `json:"mode"`
	InSPI        string    `json:"in_spi"`
	OutSPI       string    `json:"out_spi"`
	Encr         string    `json:"encryption"`
	Integ        string    `json:"hashing"`
	ESN          bool      `json:"esn"`
	UDPEncap     bool      `json:"udp_encap"`
	LocalTS      []string  `json:"local_ts"`
	RemoteTS     []string  `json:"remote_ts"`
	Installed    time.Time `json:"installed"`
	RekeyIn      int64     `json:"rekey_in_s"`
	BytesTx      uint64    `json:"bytes_tx"`
	BytesRx      uint64    `json:"bytes_rx"`
	PacketsTx    uint64    `json:"packets_tx"`
	PacketsRx    uint64    `json:"packets_rx"`
	ReplayDrops  uint64    `json:"replay_drops"`
	AuthDrops    uint64    `json:"integrity_drops"`
	InvalidDrops uint64    `json:"invalid_drops"`
	PolicyDrops  uint64    `json:"policy_drops"`
}

// Sessions returns every IKE SA, ordered by connection name and index.
// State is "established", "connecting" (half-open: not yet authenticated)
// or "deleting" (a Delete of it is in flight, see ike.SA.Deleting).
func (n *Node) Sessions() ([]Session, error) {
	var out []Session
	err := n.do(func(now time.Time) {
		for _, g := range n.gens {
			g.ep.Range(func(sa *ike.SA) bool {
				out = append(out, n.session(now, g, sa))
				return true
			})
		}
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Conn != out[j].Conn {
			return out[i].Conn < out[j].Conn
		}
		return out[i].Index < out[j].Index
	})
	return out, nil
}

func (n *Node) session(now time.Time, g *gen, sa *ike.SA) Session {
	i, r := sa.SPIs()
	key := spiPair{i, r}
	local, remote := sa.Addrs()
	s := Session{Protocol: "IKEv2 IPsec", SPIi: hex64(i), SPIr: hex64(r), Local: local.String(), Remote: remote.String(),
		NATT: sa.NATDetected(), IKETunnels: 1, State: "connecting", Role: "responder"}
	if sa.Initiator() {
		s.Role = "initiator"
	}
	if encr, prf, integ, ke := sa.Algorithms(); encr.Type != 0 {
		s.Encr, s.PRF, s.Integ, s.DHGroup = transformName(encr), transformName(prf), "none (AEAD)", ke.String()
		if integ.Type != 0 {
			s.Integ = transformName(integ)
		}
	}
	if c := sa.Conn(); c != nil {
		s.Conn, s.LocalID = c.Name, c.LocalID.String()
		if cc := g.cfg[c.Name]; cc != nil {
			s.LocalAuth, s.RemoteAuth = cc.Local.Method, cc.Remote.Method
			if c.LocalID.IsAny() {
				s.LocalID = cc.LocalAddr.String()
			}
		}
	}
	switch {
	case sa.Established():
		s.State = "established"
	case sa.Deleting():
		s.State = "deleting"
	}
	if sa.Established() || (sa.Deleting() && sa.PeerID().Type != 0) {
		s.RemoteID = sa.PeerID().String()
		ai := sa.AuthInfo()
		s.LocalAuth, s.RemoteAuth = authName(ai.Local), authName(ai.Remote)
		s.LocalCertSubject, s.RemoteCertSubject, s.RemoteCertIssuer = ai.Local.Subject, ai.Remote.Subject, ai.Remote.Issuer
		if c := sa.Conn(); c != nil && c.LocalID.IsAny() && ai.Local.Subject != "" {
			s.LocalID = ai.Local.Subject // the certificate's subject DN was claimed
		}
	}
	if info := n.sas[key]; info != nil {
		s.Index, s.Login = info.index, info.upAt
		s.Duration = int64(now.Sub(info.upAt).Seconds())
		if c := sa.Conn(); c != nil && c.RekeyTime > 0 {
			s.RekeyIn = int64(max(c.RekeyTime-now.Sub(info.upAt), 0).Seconds())
		}
	}
	for _, c := range sa.Children() {
		ch := n.child(now, sa, c)
		s.Children = append(s.Children, ch)
		s.BytesTx += ch.BytesTx
		s.BytesRx += ch.BytesRx
		s.PacketsTx += ch.PacketsTx
		s.PacketsRx += ch.PacketsRx
		s.Drops += ch.ReplayDrops + ch.AuthDrops + ch.InvalidDrops + ch.PolicyDrops
	}
	s.IPsecTunnels = len(s.Children)
	return s
}

func (n *Node) child(now time.Time, sa *ike.SA, c ike.ChildSA) Child {
	ch := Child{Name: c.Name, Mode: c.Mode.String(), InSPI: hex32(c.InSPI), OutSPI: hex32(c.OutSPI),
		Encr: fmt.Sprintf("%v-%d", c.Encr, c.EncrKeyBits), Integ: "none (AEAD)", ESN: c.ESN, UDPEncap: sa.NATDetected(),
		LocalTS: tsStrings(c.LocalTS), RemoteTS: tsStrings(c.RemoteTS)}
	if c.Integ != 0 {
		ch.Integ = c.Integ.String()
	}
	if inst := n.children[c.InSPI]; inst != nil {
		ch.Installed = inst.at
		if conn := sa.Conn(); conn != nil {
			for _, cc := range conn.Children {
				if cc.Name == c.Name && cc.RekeyTime > 0 {
					ch.RekeyIn = int64(max(cc.RekeyTime-now.Sub(inst.at), 0).Seconds())
				}
			}
		}
	}
	var in, out esp.Counters
	if v, err := n.dp.Counters(dataplane.In, c.InSPI); err == nil {
		in = v
	}
	if v, err := n.dp.Counters(dataplane.Out, c.OutSPI); err == nil {
		out = v
	}
	ch.BytesRx, ch.PacketsRx, ch.BytesTx, ch.PacketsTx = in.Bytes, in.Packets, out.Bytes, out.Packets
	ch.ReplayDrops, ch.AuthDrops, ch.InvalidDrops, ch.PolicyDrops = in.ReplayDrops, in.AuthFailures, in.InvalidDrops, in.PolicyDrops
	return ch
}

// tsStrings writes selectors as CIDRs where they are prefixes, else as
// ranges, with [proto/port] when they are narrower than "any".
func tsStrings(list []ike.TrafficSelector) []string {
	out := make([]string, len(list))
	for i, t := range list {
		out[i] = tsString(t)
	}
	return out
}

func tsString(t ike.TrafficSelector) string {
	s := t.Start.String() + "-" + t.End.String()
	for bits := 0; bits <= t.Start.BitLen(); bits++ {
		if p, err := t.Start.Prefix(bits); err == nil && p.Addr() == t.Start && ike.TSFromPrefix(p).End == t.End {
			s = p.String()
			break
		}
	}
	if t.Proto != 0 || t.StartPort != 0 || t.EndPort != 0xffff {
		port := fmt.Sprint(t.StartPort)
		if t.StartPort != t.EndPort {
			port += "-" + fmt.Sprint(t.EndPort)
		}
		s += fmt.Sprintf("[%d/%s]", t.Proto, port)
	}
	return s
}

// transformName is a transform without its type: "AES_GCM_16-256".
func transformName(t wire.Transform) string {
	name := t.String()
	if _, rest, ok := strings.Cut(name, " "); ok {
		return rest
	}
	return name
}

// authName renders how a side authenticated: "psk", or "pubkey" with the
// AUTH method and scheme ("pubkey DIGITAL_SIGNATURE/ECDSA-SHA256").
func authName(a ike.AuthSide) string {
	switch {
	case a.Method == 0:
		return ""
	case a.Method == wire.AuthSharedKeyMIC:
		return "psk"
	case a.Detail != "":
		return "pubkey " + a.Detail
	}
	return "pubkey " + a.Method.String()
}
