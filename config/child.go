package config

import "strings"

var childKeys = []string{"local_ts", "remote_ts", "mode", "esp_proposals", "start_action", "dpd_action",
	"interface", "rekey_time", "life_time", "rekey_bytes", "life_bytes"}

// child decodes one children: entry of connection c.
func (d *decoder) child(ce entry, c *Connection) (*Child, error) {
	ch := &Child{Name: ce.key, StartAction: DefaultStartAction, DPDAction: DefaultDPDAction,
		RekeyTime: DefaultChildRekey, LifeTime: DefaultChildLife, pos: d.pos(ce.kn)}
	f, err := d.fields(ce.val, ce.path, childKeys...)
	if err != nil {
		return nil, err
	}
	for _, side := range []struct {
		key  string
		ts   *[]TrafficSelector
		addr string
		any  bool
	}{{"local_ts", &ch.LocalTS, "local_addrs", !c.LocalAddr.IsValid()}, {"remote_ts", &ch.RemoteTS, "remote_addrs", !c.RemoteAddr.IsValid()}} {
		e, ok := f[side.key]
		if !ok {
			if side.any {
				return nil, ch.pos.errorf(join(ce.path, side.key), "missing; the default (dynamic) needs a concrete %s; expected a subnet like 10.1.0.0/24", side.addr)
			}
			*side.ts = []TrafficSelector{{Dynamic: true, EndPort: 0xffff}}
			continue
		}
		items, err := d.commaList(e)
		if err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return nil, d.errf(e.val, e.path, "empty list; %s", tsExpected)
		}
		for _, it := range items {
			ts, err := ParseTS(it.val)
			if err != nil {
				return nil, d.errf(it.node, it.path, "%q: %v; %s", it.val, err, tsExpected)
			}
			if ts.Dynamic && side.any {
				return nil, d.errf(it.node, it.path, "dynamic needs a concrete %s (petrel has no virtual IPs yet); expected a subnet like 10.1.0.0/24", side.addr)
			}
			*side.ts = append(*side.ts, ts)
		}
	}
	if e, ok := f["mode"]; ok {
		m, err := d.oneOf(e, "tunnel", "transport")
		if err != nil {
			return nil, err
		}
		ch.Transport = m == "transport"
	}
	if e, ok := f["esp_proposals"]; ok {
		items, err := d.commaList(e)
		if err != nil {
			return nil, err
		}
		if ch.Proposals, err = d.parseProposals(items, forESP); err != nil {
			return nil, err
		}
		for _, it := range items {
			ch.ProposalText = append(ch.ProposalText, it.val)
		}
	}
	if e, ok := f["start_action"]; ok {
		if ch.StartAction, err = d.oneOf(e, "none", "start", "trap"); err != nil {
			return nil, err
		}
		if ch.StartAction != "none" && !c.RemoteAddr.IsValid() {
			return nil, d.errf(e.val, e.path, "%s needs a concrete remote_addrs to initiate to; expected none for a responder", ch.StartAction)
		}
	}
	if e, ok := f["dpd_action"]; ok {
		if ch.DPDAction, err = d.oneOf(e, "clear", "restart", "trap"); err != nil {
			return nil, err
		}
	}
	if e, ok := f["interface"]; ok {
		if ch.Interface, err = d.str(e); err != nil {
			return nil, err
		}
		if !validIfName(ch.Interface) {
			return nil, d.errf(e.val, e.path, "%q is not an interface name; expected 1 to 15 letters, digits, '-', '_' or '.', like xfrm-site-b", ch.Interface)
		}
	}
	if err := d.lifetimes(f, ch); err != nil {
		return nil, err
	}
	return ch, nil
}

// lifetimes decodes rekey/life time and bytes. A rekey value without its
// life value gets life = rekey + 10% (strongSwan's rule); life must exceed
// rekey so that rekeying happens before the SA expires.
func (d *decoder) lifetimes(f map[string]entry, ch *Child) error {
	var err error
	rt, hasRT := f["rekey_time"]
	lt, hasLT := f["life_time"]
	if hasRT {
		if ch.RekeyTime, err = d.duration(rt); err != nil {
			return err
		}
		ch.LifeTime = ch.RekeyTime + ch.RekeyTime/10
	}
	if hasLT {
		if ch.LifeTime, err = d.duration(lt); err != nil {
			return err
		}
		if ch.RekeyTime != 0 && ch.LifeTime <= ch.RekeyTime {
			return d.errf(lt.val, lt.path, "%v is not above rekey_time %v; expected a life_time longer than rekey_time", ch.LifeTime, ch.RekeyTime)
		}
	}
	rb, hasRB := f["rekey_bytes"]
	lb, hasLB := f["life_bytes"]
	if hasRB {
		if ch.RekeyBytes, err = d.byteSize(rb); err != nil {
			return err
		}
		ch.LifeBytes = ch.RekeyBytes + ch.RekeyBytes/10
	}
	if hasLB {
		if ch.LifeBytes, err = d.byteSize(lb); err != nil {
			return err
		}
		if ch.RekeyBytes != 0 && ch.LifeBytes <= ch.RekeyBytes {
			return d.errf(lb.val, lb.path, "%d is not above rekey_bytes %d; expected life_bytes larger than rekey_bytes", ch.LifeBytes, ch.RekeyBytes)
		}
	}
	return nil
}

func validIfName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == ""
}
