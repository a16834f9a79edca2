package ike

import (
	"time"
)

// dpd is a liveness check (RFC 7296 §2.4): an empty INFORMATIONAL request,
// sent when nothing was received from the peer for Connection.DPDDelay and
// the window is idle. Its answer is the proof of life; the task manager's
// retransmission schedule running out is the proof of death (peerDead).
//
//	Initiator: HDR, SK {}  -->
//	Responder:             <--  HDR, SK {}
type dpd struct{}

func (dpd) kind() taskKind { return kindDPD }

func (dpd) build(*SA, *msgOut) (status, error) { return needMore, nil }

func (dpd) process(*SA, *msgIn) (status, error) { return done, nil }

// dpdDue is when the next liveness check is due; zero if none.
func (sa *SA) dpdDue() time.Time {
	// A request in flight checks liveness already (its retransmissions
	// running out declare the peer dead).
	if sa.conn == nil || sa.conn.DPDDelay <= 0 || sa.state != stateEstablished || sa.replaced != nil || sa.tm.inFlight() {
		return time.Time{}
	}
	last := sa.lastRecv
	if last.IsZero() {
		last = sa.created
	}
	return last.Add(sa.conn.DPDDelay)
}

// checkLiveness queues a liveness check when the SA has been quiet.
func (sa *SA) checkLiveness(now time.Time) {
	d := sa.dpdDue()
	if d.IsZero() || now.Before(d) || sa.tm.inFlight() || len(sa.tm.queued) > 0 {
		return
	}
	sa.lastRecv = now // do not queue another until this one is answered or dies
	sa.queue(dpd{})
}

// peerDead ends an established SA whose peer stopped answering, reports
// it, and applies the children's DPD action: restart wins over trap wins
// over clear.
func (sa *SA) peerDead(out *Output) {
	action := DPDClear
	if sa.conn != nil {
		for _, c := range sa.conn.Children {
			if c.DPDAction == DPDRestart || (c.DPDAction == DPDTrap && action == DPDClear) {
				action = c.DPDAction
			}
		}
	}
	sa.event(out, EventPeerDead, action.String())
	sa.info("ike: peer dead", "action", action.String())
	if action == DPDRestart {
		sa.restart = true
	}
	sa.destroy(out, "dead-peer")
}
