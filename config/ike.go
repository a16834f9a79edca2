package config

import (
	"bytes"
	"fmt"
	"net/netip"

	"github.com/petrel-vpn/petrel/ike"
	"github.com/petrel-vpn/petrel/wire"
)

// This file is the only one that knows the protocol core's types, so that
// the core can evolve with one place to adapt. Settings the core does not
// act on yet (dpd_delay, dpd_action, start_action, interface, rekey_bytes)
// stay in Config for the daemon to read.

// IKEConnections converts every connection to the core's form, with PSK
// authenticators wired from the chosen secrets.
func (c *Config) IKEConnections() ([]*ike.Connection, error) {
	out := make([]*ike.Connection, 0, len(c.Connections))
	for _, conn := range c.Connections {
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
		Retransmit:      ike.Retransmit{Timeout: rt.Timeout, Base: rt.Base, Tries: rt.Tries},
		RekeyTime:       conn.RekeyTime,
		ReauthTime:      conn.ReauthTime,
	}
	if conn.PreferPeer {
		ic.Policy = ike.PreferPeer
	}
	if conn.Local.Method == "psk" || conn.Remote.Method == "psk" {
		if conn.PSK == nil || len(conn.PSK.Value) == 0 {
			return nil, conn.localPos.errorf("connections."+conn.Name+".local.auth", "psk has no secret; expected Load to have picked one")
		}
	}
	if conn.Local.Method == "psk" {
		ic.LocalAuth = &ike.PSK{Secret: bytes.Clone(conn.PSK.Value)}
	}
	if conn.Remote.Method == "psk" {
		ic.RemoteAuth = &ike.PSK{Secret: bytes.Clone(conn.PSK.Value)}
	}
	for _, ch := range conn.Children {
		cc := ike.ChildConfig{
			Name:      ch.Name,
			Mode:      ike.ModeTunnel,
			Proposals: cloneProposals(ch.Proposals),
			RekeyTime: ch.RekeyTime,
			LifeTime:  ch.LifeTime,
			LifeBytes: ch.LifeBytes,
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
