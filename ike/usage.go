package ike

import "time"

// ChildUsage is what the data plane counted on one Child SA since it was
// installed: bytes and packets, both directions together.
type ChildUsage struct {
	InSPI          uint32
	Bytes, Packets uint64
}

// ChildUsage feeds data-plane counters to the core, which is sans-I/O and
// cannot read them itself; the daemon calls it periodically. A pair past
// its RekeyBytes/RekeyPackets is rekeyed, one past LifeBytes/LifePackets
// deleted (RFC 7296 §2.8). Unknown SPIs are ignored.
func (ep *Endpoint) ChildUsage(now time.Time, usage []ChildUsage, out *Output) {
	if len(usage) == 0 {
		return
	}
	want := make(map[uint32]ChildUsage, len(usage))
	for _, u := range usage {
		want[u.InSPI] = u
	}
	var due []*SA
	for _, sa := range ep.sas {
		if sa.state != stateEstablished {
			continue
		}
		for _, c := range sa.children {
			if u, ok := want[c.InSPI]; ok && c.cfg != nil && c.overLimit(u) {
				due = append(due, sa)
				break
			}
		}
	}
	for _, sa := range due {
		ep.run(sa, now, out, func() {
			var expired []uint32
			for _, c := range sa.children {
				u, ok := want[c.InSPI]
				if !ok || c.cfg == nil || c.deleting {
					continue
				}
				cfg := c.cfg
				switch {
				case over(u.Bytes, cfg.LifeBytes) || over(u.Packets, cfg.LifePackets):
					expired = append(expired, c.InSPI)
				case (over(u.Bytes, cfg.RekeyBytes) || over(u.Packets, cfg.RekeyPackets)) && !c.rekeying && !c.rekeyed && !c.volumeRekey:
					c.volumeRekey = true
					sa.queue(newChildRekey(c.InSPI))
				}
			}
			if len(expired) > 0 {
				sa.queueFront(&childDelete{spis: expired, reason: "expired"})
			}
			sa.initiate(now, out)
		})
	}
}

func over(v, limit uint64) bool { return limit > 0 && v >= limit }

func (c *ChildSA) overLimit(u ChildUsage) bool {
	cfg := c.cfg
	return over(u.Bytes, cfg.RekeyBytes) || over(u.Packets, cfg.RekeyPackets) ||
		over(u.Bytes, cfg.LifeBytes) || over(u.Packets, cfg.LifePackets)
}

// reauthenticate starts a fresh IKE SA for old's connection (RFC 7296
// §2.8.3, make-before-break): old keeps its children until the new SA is
// up, then is deleted.
func (ep *Endpoint) reauthenticate(old *SA, now time.Time, out *Output) {
	if old.conn == nil || !old.conn.Remote.IsValid() || !old.conn.Local.IsValid() {
		return
	}
	spi, err := ep.Initiate(now, old.conn.Name, out)
	if err != nil {
		ep.log.Info("ike: reauthentication failed to start", "conn", old.conn.Name, "err", err)
		return
	}
	ep.sas[spi].reauthOf = old
}

// reauthDone deletes the SA a reauthentication replaced.
func (ep *Endpoint) reauthDone(n *SA) {
	old := n.reauthOf
	n.reauthOf = nil
	if old == nil || old.state != stateEstablished || ep.sas[old.ourSPI()] != old {
		return
	}
	out, now := n.out, n.now
	ev := Event{Kind: EventIKERekeyed, OldSPIi: old.spiI, OldSPIr: old.spiR, Reason: "reauthenticated"}
	n.fillEvent(&ev)
	out.Events = append(out.Events, ev)
	ep.run(old, now, out, func() {
		old.replaced = n
		old.queueFront(ikeDelete{})
		old.initiate(now, out)
	})
	n.out, n.now = out, now
}
