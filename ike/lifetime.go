package ike

import (
	"encoding/binary"
	"io"
	"time"
)

// Lifetimes and delayed work of an IKE SA and its Child SAs: soft limits
// start a rekey, hard limits delete (RFC 7296 §2.8); both ends draw a random
// jitter so they rarely rekey at once. Retries after TEMPORARY_FAILURE wait
// a random delay (§2.25).

// childTimers are a Child SA's soft and hard limits; zero = none.
type childTimers struct {
	rekeyAt, expireAt time.Time
}

// jitter is a random duration in [0, d).
func (sa *SA) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	var b [8]byte
	if _, err := io.ReadFull(sa.ep.rand, b[:]); err != nil {
		return 0
	}
	return time.Duration(binary.BigEndian.Uint64(b[:]) % uint64(d))
}

// softHard computes a soft limit (rekey, less up to a tenth as jitter) and
// a hard limit; a missing hard limit is the soft one plus a tenth.
func (sa *SA) softHard(rekey, life time.Duration) (soft, hard time.Time) {
	now := sa.now
	if rekey > 0 {
		soft = now.Add(rekey - sa.jitter(rekey/10))
		if life <= 0 {
			life = rekey + rekey/10
		}
	}
	if life > 0 {
		hard = now.Add(life)
	}
	return soft, hard
}

func newChildTimers(sa *SA, cfg *ChildConfig) childTimers {
	if cfg == nil {
		return childTimers{}
	}
	soft, hard := sa.softHard(cfg.RekeyTime, cfg.LifeTime)
	return childTimers{rekeyAt: soft, expireAt: hard}
}

// delayed is a task waiting for its time (a retry after TEMPORARY_FAILURE).
type delayed struct {
	at time.Time
	t  task
}

// retryLater queues t after a random delay (RFC 7296 §2.25): 1-5 s, or
// one to five retransmission timeouts when those are shorter.
func (sa *SA) retryLater(t task) {
	base := min(time.Second, sa.tm.schedule.Timeout)
	sa.tm.delayed = append(sa.tm.delayed, delayed{at: sa.now.Add(base + sa.jitter(4*base)), t: t})
}

// queueFront puts t before the other queued tasks (the delete that
// completes a rekey goes first).
func (sa *SA) queueFront(t task) { sa.tm.queued = append([]task{t}, sa.tm.queued...) }

// lifeDeadline is the earliest lifetime or delayed-task time; zero if none.
func (sa *SA) lifeDeadline() time.Time {
	var d time.Time
	min := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	min(sa.ikeTimers.expireAt)
	if sa.state != stateEstablished {
		return d
	}
	min(sa.ikeTimers.rekeyAt)
	min(sa.ikeTimers.reauthAt)
	for _, x := range sa.tm.delayed {
		min(x.at)
	}
	for _, c := range sa.children {
		min(c.timers.rekeyAt)
		min(c.timers.expireAt)
	}
	return d
}

// onLifeTimer acts on due limits and delayed tasks, then starts the next
// exchange if the window is free.
func (sa *SA) onLifeTimer(now time.Time, out *Output) {
	it := &sa.ikeTimers
	if !it.expireAt.IsZero() && !now.Before(it.expireAt) {
		sa.destroy(out, "expired")
		return
	}
	if sa.state != stateEstablished {
		return
	}
	if !it.rekeyAt.IsZero() && !now.Before(it.rekeyAt) {
		it.rekeyAt = time.Time{}
		sa.queue(newIKERekey())
	}
	if !it.reauthAt.IsZero() && !now.Before(it.reauthAt) {
		// RFC 7296 §2.8.3: reauthenticate with a fresh IKE SA; this one
		// goes once that is up (Endpoint.run, onEstablished).
		it.reauthAt = time.Time{}
		it.rekeyAt = time.Time{}
		sa.reauth = true
	}
	kept := sa.tm.delayed[:0]
	for _, x := range sa.tm.delayed {
		if now.Before(x.at) {
			kept = append(kept, x)
		} else {
			sa.queue(x.t)
		}
	}
	sa.tm.delayed = kept
	var expired []uint32
	for _, c := range sa.children {
		switch {
		case !c.timers.expireAt.IsZero() && !now.Before(c.timers.expireAt):
			c.timers = childTimers{}
			if !c.deleting {
				expired = append(expired, c.InSPI)
			}
		case !c.timers.rekeyAt.IsZero() && !now.Before(c.timers.rekeyAt):
			c.timers.rekeyAt = time.Time{}
			if !c.rekeyed && !c.deleting && !c.rekeying {
				sa.queue(newChildRekey(c.InSPI))
			}
		}
	}
	if len(expired) > 0 {
		sa.queueFront(&childDelete{spis: expired, reason: "expired"})
	}
	sa.initiate(now, out)
}

// ikeTimers are the IKE SA's soft limits: rekey (RFC 7296 §2.18) and
// reauthentication (§2.8.3); zero = none.
type ikeTimers struct {
	rekeyAt, reauthAt time.Time
	expireAt          time.Time // a replaced SA the peer should have deleted by then
}

// replacedGrace is how long a replaced IKE SA waits for the peer's delete
// before it goes on its own: as long as the peer's retransmissions of that
// delete may take (assuming its schedule is ours), and at least 10 s.
func (sa *SA) replacedGrace() time.Duration {
	r := sa.tm.schedule
	var total time.Duration
	for i := 0; i <= r.Tries; i++ {
		total += r.delay(i)
	}
	return max(total, 10*time.Second)
}

func newIKETimers(sa *SA) ikeTimers {
	if sa.conn == nil {
		return ikeTimers{}
	}
	var t ikeTimers
	t.rekeyAt, _ = sa.softHard(sa.conn.RekeyTime, 0)
	t.reauthAt, _ = sa.softHard(sa.conn.ReauthTime, 0)
	return t
}
