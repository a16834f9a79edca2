package config

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var connKeys = []string{"local_addrs", "remote_addrs", "local_port", "remote_port", "proposals", "prefer",
	"rekey_time", "reauth_time", "dpd_delay", "encap", "fragmentation", "fragment_size", "local", "remote", "children"}

// connection decodes one connections: entry.
func (d *decoder) connection(ce entry) (*Connection, error) {
	c := &Connection{Name: ce.key, RemotePort: DefaultPort,
		RekeyTime: DefaultRekeyTime, ReauthTime: DefaultReauthTime, DPDDelay: DefaultDPDDelay,
		Encap: DefaultEncap, pos: d.pos(ce.kn)}
	c.localPos = c.pos
	c.Local.Method, c.Remote.Method = DefaultAuth, DefaultAuth
	f, err := d.fields(ce.val, ce.path, connKeys...)
	if err != nil {
		return nil, err
	}
	for _, a := range []struct {
		key  string
		addr *netip.Addr
		port *uint16
	}{{"local_addrs", &c.LocalAddr, nil}, {"remote_addrs", &c.RemoteAddr, nil},
		{"local_port", nil, &c.LocalPort}, {"remote_port", nil, &c.RemotePort}} {
		e, ok := f[a.key]
		if ok && a.key == "local_addrs" {
			c.addrPos = d.pos(e.val)
		}
		if ok && a.key == "local_port" {
			c.portPos = d.pos(e.val)
		}
		switch {
		case !ok:
		case a.addr != nil:
			if *a.addr, err = d.address(e); err != nil {
				return nil, err
			}
		default:
			if *a.port, err = d.port(e); err != nil {
				return nil, err
			}
		}
	}
	if c.LocalAddr.IsValid() && c.RemoteAddr.IsValid() && c.LocalAddr.Is4() != c.RemoteAddr.Is4() {
		e := f["remote_addrs"]
		return nil, d.errf(e.val, e.path, "%s and local_addrs %s are of different IP families; expected both IPv4 or both IPv6", c.RemoteAddr, c.LocalAddr)
	}
	if e, ok := f["proposals"]; ok {
		items, err := d.commaList(e)
		if err != nil {
			return nil, err
		}
		if c.Proposals, err = d.parseProposals(items, forIKE); err != nil {
			return nil, err
		}
		for _, it := range items {
			c.ProposalText = append(c.ProposalText, it.val)
		}
	}
	if e, ok := f["prefer"]; ok {
		p, err := d.oneOf(e, "local", "peer")
		if err != nil {
			return nil, err
		}
		c.PreferPeer = p == "peer"
	}
	for _, t := range []struct {
		key string
		p   *time.Duration
	}{{"rekey_time", &c.RekeyTime}, {"reauth_time", &c.ReauthTime}, {"dpd_delay", &c.DPDDelay}} {
		if e, ok := f[t.key]; ok {
			if *t.p, err = d.duration(e); err != nil {
				return nil, err
			}
		}
	}
	if e, ok := f["encap"]; ok {
		if c.Encap, err = d.boolean(e); err != nil {
			return nil, err
		}
	}
	if e, ok := f["fragmentation"]; ok {
		v, err := d.str(e)
		if err == nil && (v == "accept" || v == "force") {
			return nil, d.errf(e.val, e.path, "%q is not supported yet; expected yes or no", v)
		}
		if v, err = d.oneOf(e, "yes", "no"); err != nil {
			return nil, err
		}
		c.NoFragmentation = v == "no"
	}
	if e, ok := f["fragment_size"]; ok {
		if c.FragmentSize, err = d.fragmentSize(e); err != nil {
			return nil, err
		}
		// A size that cannot apply is most likely a mistake (the user
		// wants small datagrams and would not get them), and there is no
		// warning channel: refuse it. fragment_size: 0 stays allowed so
		// that a connection can turn fragmentation off under a template
		// that sets a size.
		if c.FragmentSize != 0 && c.NoFragmentation {
			return nil, d.errf(e.kn, e.path, "only with fragmentation: yes (messages to the peer are never fragmented with no); expected it removed or fragmentation: yes")
		}
	}
	for _, side := range []struct {
		key string
		a   *Auth
	}{{"local", &c.Local}, {"remote", &c.Remote}} {
		if e, ok := f[side.key]; ok {
			if side.key == "local" {
				c.localPos = d.pos(e.kn)
			}
			if err := d.auth(e, side.a, side.key == "local"); err != nil {
				return nil, err
			}
		}
	}
	if c.Local.ID.IsAny() && c.Local.Method != "pubkey" { // pubkey: the certificate's subject DN
		if !c.LocalAddr.IsValid() {
			return nil, c.localPos.errorf(join(ce.path, "local.id"), "required when local_addrs is %%any; expected an identity like fqdn:vpn.example.com or an IP address")
		}
		c.Local.ID = addrID(c.LocalAddr)
	}
	e, ok := f["children"]
	if !ok {
		return nil, c.pos.errorf(ce.path, "no children; expected at least one under children: with local_ts and remote_ts")
	}
	children, err := d.entries(e.val, e.path, "children")
	if err != nil {
		return nil, err
	}
	if len(children) == 0 {
		return nil, d.errf(e.val, e.path, "empty; expected at least one child with local_ts and remote_ts")
	}
	for _, che := range children {
		ch, err := d.child(che, c)
		if err != nil {
			return nil, err
		}
		c.Children = append(c.Children, ch)
	}
	return c, nil
}

// fragmentSize decodes fragment_size: 0 (the address-family default) or
// MinFragmentSize to MaxFragmentSize octets of UDP payload.
func (d *decoder) fragmentSize(e entry) (int, error) {
	const expected = "expected 0 (the default: 1280 for an IPv4 peer, 1232 for IPv6) or octets of UDP payload per IKE datagram from %d to %d"
	n := e.val
	if n.Kind == yaml.ScalarNode {
		if v, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
			if v == 0 || v >= MinFragmentSize && v <= MaxFragmentSize {
				return int(v), nil
			}
			return 0, d.errf(n, e.path, "%d is out of range; "+expected, v, MinFragmentSize, MaxFragmentSize)
		}
	}
	return 0, d.errf(n, e.path, "got %s; "+expected, kindName(n), MinFragmentSize, MaxFragmentSize)
}

// address decodes local_addrs/remote_addrs: one IP address or %any (a
// one-element list is accepted for swanctl.conf habits).
func (d *decoder) address(e entry) (netip.Addr, error) {
	items, err := d.commaList(e)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(items) != 1 {
		return netip.Addr{}, d.errf(e.val, e.path, "%d addresses; expected exactly one IP address or %%any (several are not supported yet)", len(items))
	}
	it := items[0]
	if it.val == "%any" || it.val == "%any4" || it.val == "%any6" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(it.val)
	if err == nil && a.Zone() == "" {
		return a.Unmap(), nil
	}
	what := "not an IP address"
	switch {
	case strings.ContainsAny(it.val, "/-"):
		what = "subnets and ranges are not supported here"
	case strings.Contains(it.val, "."):
		what = "host names are not supported yet"
	}
	return netip.Addr{}, d.errf(it.node, it.path, "%q: %s; expected an IP address like 192.0.2.1 or %%any", it.val, what)
}

// auth decodes local: or remote:.
func (d *decoder) auth(e entry, a *Auth, local bool) error {
	keys := append([]string{"auth", "id"}, remotePubkeyKeys...)
	if local {
		keys = append([]string{"auth", "id"}, localPubkeyKeys...)
	}
	f, err := d.fields(e.val, e.path, keys...)
	if err != nil {
		return err
	}
	if ae, ok := f["auth"]; ok {
		m, err := d.str(ae)
		if err != nil {
			return err
		}
		switch {
		case m == "psk" || m == "pubkey":
			a.Method = m
		case strings.HasPrefix(m, "eap") || m == "rsa" || m == "ecdsa" || strings.HasPrefix(m, "xauth"):
			return d.errf(ae.val, ae.path, "%q: not supported yet; expected psk or pubkey", m)
		default:
			return d.errf(ae.val, ae.path, "unknown method %q; expected psk or pubkey", m)
		}
	}
	if a.Method == "pubkey" {
		if err := d.pubkey(e, f, a, local); err != nil {
			return err
		}
	} else {
		for _, k := range keys[2:] {
			if ke, ok := f[k]; ok {
				return d.errf(ke.kn, ke.path, "only with auth: pubkey; expected it removed or auth: pubkey")
			}
		}
	}
	if ie, ok := f["id"]; ok {
		s, err := d.str(ie)
		if err != nil {
			return err
		}
		if a.ID, err = ParseIdentity(s); err != nil {
			return d.errf(ie.val, ie.path, "%q: %v; %s", s, err, idExpected)
		}
		if local && (a.ID.IsAny() || a.ID.Wildcard()) {
			return d.errf(ie.val, ie.path, "%q: a local identity cannot be %%any or a wildcard; expected one identity like fqdn:vpn.example.com", s)
		}
	}
	return nil
}
