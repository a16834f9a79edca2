package config

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"

	"github.com/petrel-vpn/petrel/cert"
	"github.com/petrel-vpn/petrel/ike"
	"github.com/petrel-vpn/petrel/wire"
)

// This file is the only one that knows the protocol core's types, so that
// the core can evolve with one place to adapt. Settings the core does not
// act on (start_action, interface) stay in Config for the daemon to read.

// IKEConnections converts every connection to the core's form, with PSK
// authenticators wired from the chosen secrets.
func (c *Config) IKEConnections() ([]*ike.Connection, error) {
	out := make([]*ike.Connection, 0, len(c.Connections))
	for _, conn := range c.Connections {
		conn.fetcher, conn.certLog = c.Fetcher, c.CertLog
		ic, err := conn.IKE(c.Daemon.Retransmit)
		if err != nil {
			return nil, err
		}
		out = append(out, ic)
	}
	return out, nil
}

// EndpointConfig is ike.DefaultEndpointConfig with the daemon settings and
// connections of c; the caller adds Rand, SPIs, KeyLog and Logger.
func (c *Config) EndpointConfig() (ike.EndpointConfig, error) {
	ec := ike.DefaultEndpointConfig()
	conns, err := c.IKEConnections()
	if err != nil {
		return ec, err
	}
	ec.Connections = conns
	ec.CookieThreshold = c.Daemon.CookieThreshold
	ec.MaxHalfOpen = c.Daemon.HalfOpenLimit
	ec.HalfOpenPerIP = c.Daemon.HalfOpenPerPeer
	ec.NATTPort = c.Daemon.NATTPort
	return ec, nil
}

// IKE converts one connection; rt is the daemon's retransmission schedule.
// Dynamic traffic selectors become the host address of their side.
func (conn *Connection) IKE(rt Retransmit) (*ike.Connection, error) {
	ic := &ike.Connection{
		Name:            conn.Name,
		Local:           netip.AddrPortFrom(conn.LocalAddr, conn.LocalPort),
		Remote:          netip.AddrPortFrom(conn.RemoteAddr, conn.RemotePort),
		Proposals:       cloneProposals(conn.Proposals),
		Policy:          ike.PreferLocal,
		LocalID:         ikeID(conn.Local.ID),
		RemoteID:        ikeID(conn.Remote.ID),
		SendIDr:         !conn.Remote.ID.IsAny() && !conn.Remote.ID.Wildcard(),
		ForceEncap:      conn.Encap,
		NoFragmentation: conn.NoFragmentation,
		FragmentSize:    conn.FragmentSize,
		Retransmit:      ike.Retransmit{Timeout: rt.Timeout, Base: rt.Base, Tries: rt.Tries},
		RekeyTime:       conn.RekeyTime,
		ReauthTime:      conn.ReauthTime,
		DPDDelay:        conn.DPDDelay,
	}
	if conn.PreferPeer {
		ic.Policy = ike.PreferPeer
	}
	if conn.Local.Method == "psk" || conn.Remote.Method == "psk" {
		if (conn.PSK == nil || len(conn.PSK.Value) == 0) && len(conn.PeerPSKs) == 0 {
			return nil, conn.localPos.errorf("connections."+conn.Name+".local.auth", "psk has no secret; expected Load to have picked one")
		}
	}
	var local, remote interface {
		ike.Authenticator
		ike.Verifier
	}
	if len(conn.PeerPSKs) > 0 {
		local, remote = newPeerPSK(conn), newPeerPSK(conn)
	} else if conn.PSK != nil {
		local, remote = &ike.PSK{Secret: bytes.Clone(conn.PSK.Value)}, &ike.PSK{Secret: bytes.Clone(conn.PSK.Value)}
	}
	if conn.Local.Method == "psk" {
		ic.LocalAuth = local
	}
	if conn.Remote.Method == "psk" {
		ic.RemoteAuth = remote
	}
	conn.pubkeyAuth(ic)
	for _, ch := range conn.Children {
		cc := ike.ChildConfig{
			Name:       ch.Name,
			Mode:       ike.ModeTunnel,
			Proposals:  cloneProposals(ch.Proposals),
			RekeyTime:  ch.RekeyTime,
			LifeTime:   ch.LifeTime,
			RekeyBytes: ch.RekeyBytes,
			LifeBytes:  ch.LifeBytes,
		}
		switch ch.DPDAction {
		case "restart":
			cc.DPDAction = ike.DPDRestart
		case "trap":
			cc.DPDAction = ike.DPDTrap
		}
		if ch.Transport {
			cc.Mode = ike.ModeTransport
		}
		var err error
		if cc.LocalTS, err = ikeTS(ch.LocalTS, conn.LocalAddr); err != nil {
			return nil, ch.pos.errorf("connections."+conn.Name+".children."+ch.Name+".local_ts", "%v", err)
		}
		if cc.RemoteTS, err = ikeTS(ch.RemoteTS, conn.RemoteAddr); err != nil {
			return nil, ch.pos.errorf("connections."+conn.Name+".children."+ch.Name+".remote_ts", "%v", err)
		}
		ic.Children = append(ic.Children, cc)
	}
	return ic, nil
}

func ikeID(id Identity) ike.Identity {
	if id.IsAny() {
		return ike.Identity{}
	}
	return ike.Identity{Type: id.Type, Data: bytes.Clone(id.Data)}
}

func ikeTS(list []TrafficSelector, addr netip.Addr) ([]ike.TrafficSelector, error) {
	out := make([]ike.TrafficSelector, 0, len(list))
	for _, ts := range list {
		r, ok := ts.Resolve(addr)
		if !ok {
			return nil, fmt.Errorf("dynamic needs a concrete address; expected a subnet")
		}
		out = append(out, ike.TrafficSelector{Proto: r.Proto, StartPort: r.StartPort, EndPort: r.EndPort, Start: r.Start, End: r.End})
	}
	return out, nil
}

func cloneProposals(ps [][]wire.Transform) [][]wire.Transform {
	if ps == nil {
		return nil
	}
	out := make([][]wire.Transform, len(ps))
	for i, p := range ps {
		out[i] = append([]wire.Transform(nil), p...)
	}
	return out
}

// peerPSK authenticates with the PSK that fits the identities of this
// exchange, for connections whose remote.id is %any or a wildcard: per-user
// secrets of road warriors. Verify picks by the identity the peer claims
// (RFC 7296 §2.15: the responder looks the key up from IDi); Prove by the
// peer's identity once known, else by ours. The ranking is pickSecrets'.
type peerPSK struct {
	local      Identity
	remoteAddr []Identity
	secrets    []*Secret
}

func newPeerPSK(conn *Connection) *peerPSK {
	p := &peerPSK{local: conn.Local.ID}
	if conn.PSK != nil {
		p.secrets = append(p.secrets, conn.PSK)
	}
	for _, s := range conn.PeerPSKs {
		if s != conn.PSK {
			p.secrets = append(p.secrets, s)
		}
	}
	if conn.RemoteAddr.IsValid() {
		p.remoteAddr = []Identity{addrID(conn.RemoteAddr)}
	}
	return p
}

// pick returns a fresh ike.PSK for our identity me and the peer's, or nil.
func (p *peerPSK) pick(me, peer ike.Identity) *ike.PSK {
	local := []Identity{p.local, {Type: me.Type, Data: me.Data}}
	remote := p.remoteAddr
	if !peer.IsAny() {
		remote = []Identity{{Type: peer.Type, Data: peer.Data}}
	}
	var best *Secret
	bestScore := 0
	for _, s := range p.secrets {
		if score := scoreSecret(s, local, remote); score > bestScore {
			best, bestScore = s, score
		}
	}
	if best == nil {
		return nil
	}
	return &ike.PSK{Secret: bytes.Clone(best.Value)}
}

// Prove implements ike.Authenticator.
func (p *peerPSK) Prove(ctx *ike.AuthContext) ([]wire.Payload, error) {
	k := p.pick(ctx.ID, ctx.Peer)
	if k == nil {
		return nil, fmt.Errorf("config: no PSK for %v with peer %v", ctx.ID, ctx.Peer)
	}
	defer clear(k.Secret)
	return k.Prove(ctx)
}

// Verify implements ike.Verifier.
func (p *peerPSK) Verify(ctx *ike.AuthContext, payloads []wire.Payload) error {
	k := p.pick(ctx.Peer, ctx.ID)
	if k == nil {
		return fmt.Errorf("config: no PSK for peer %v", ctx.ID)
	}
	defer clear(k.Secret)
	return k.Verify(ctx, payloads)
}

// pubkeyAuth sets the certificate authenticator and verifier of a pubkey
// connection: one credential store per connection holds the local
// credential and the trust anchors (CERTREQ both ways, RFC 7296 §3.7).
func (conn *Connection) pubkeyAuth(ic *ike.Connection) {
	l, r := conn.Local.Pubkey, conn.Remote.Pubkey
	if conn.Local.Method != "pubkey" {
		l = nil
	}
	if conn.Remote.Method != "pubkey" {
		r = nil
	}
	if l == nil && r == nil {
		return
	}
	var creds []*cert.Credential
	var anchors []*x509.Certificate
	if l != nil {
		creds = l.Credentials
	}
	if r != nil {
		anchors = r.Anchors
	}
	store := cert.NewStore(creds, anchors)
	if l != nil {
		ic.LocalAuth = &ike.CertAuth{Local: &cert.Local{Store: store, RSAPSS: l.RSAPSS}}
	}
	if r == nil {
		return
	}
	fetcher := conn.fetcher
	if fetcher == nil {
		fetcher = noFetcher{}
	}
	v := &cert.Validator{Store: store, EKUs: r.EKUs}
	if pol, ok := r.unreachable(); ok {
		v.Revocation = &cert.Revocation{Fetcher: fetcher, Policy: pol, Log: conn.certLog}
	}
	rem := &cert.Remote{Validator: v}
	if r.Methods != nil || r.Schemes != nil {
		rem.Policy = &cert.Policy{Methods: r.Methods, Schemes: r.Schemes}
	}
	if r.HashURL {
		rem.HashURL = &cert.HashURLResolver{Fetcher: fetcher}
	}
	ic.RemoteAuth = &ike.CertVerifier{Remote: rem}
}

// noFetcher is the Fetcher of a configuration the daemon gave none.
type noFetcher struct{}

func (noFetcher) Fetch(_ context.Context, req cert.Request) ([]byte, error) {
	return nil, errors.New("config: no fetcher for " + req.URL)
}
