package ike

import (
	"net/netip"

	"github.com/petrel-vpn/petrel/wire"
)

// taskKind identifies a task; its position in taskOrder is the order in
// which tasks build and process a message.
type taskKind uint8

const (
	kindIKEInit        taskKind = iota // task_ike_init.go: SA, KE, Nonce, COOKIE, INVALID_KE retry
	kindNATD                           // task_natd.go: NAT_DETECTION_* (RFC 7296 §2.23)
	kindFeatures                       // task_features.go: fragmentation, signature hashes
	kindAuth                           // task_auth.go: IDi/IDr, AUTH
	kindChildCreate                    // task_child_create.go: first Child SA (RFC 7296 §1.2)
	kindIKEDelete                      // task_ike_delete.go: INFORMATIONAL with D(IKE)
	kindInfo                           // task_info.go: other INFORMATIONAL requests
	kindChildDelete                    // task_child_delete.go: INFORMATIONAL with D(ESP)
	kindIKERekey                       // task_ike_rekey.go: CREATE_CHILD_SA rekeying the IKE SA
	kindDPD                            // task_dpd.go: empty INFORMATIONAL liveness check
	kindInitialContact                 // task_initial_contact.go: N(INITIAL_CONTACT) in IKE_AUTH
	kindNotify                         // task_initial_contact.go: INFORMATIONAL with N(INVALID_SPI)
)

// taskOrder is the explicit order in which the task manager hands a message
// to its tasks. COOKIE must be the first payload of a retried IKE_SA_INIT
// (RFC 7296 §2.6), so IKE_INIT builds first; AUTH must be verified before a
// Child SA is accepted, so AUTH processes before CHILD_CREATE.
var taskOrder = [...]taskKind{kindIKEInit, kindNATD, kindFeatures, kindAuth, kindInitialContact, kindIKERekey, kindChildCreate, kindChildDelete, kindIKEDelete, kindInfo, kindDPD, kindNotify}

var orderIndex = func() (idx [len(taskOrder)]int) {
	for i, k := range taskOrder {
		idx[k] = i
	}
	return idx
}()

// status is what a task says after building or processing a message.
type status uint8

const (
	needMore status = iota // take part in the next exchange too
	done                   // finished: remove the task
	retry                  // initiator: send the same exchange again (COOKIE, INVALID_KE_PAYLOAD)
)

// task is one concern of an exchange, with its role fixed at construction.
// An initiator task builds requests and processes responses; a responder
// task processes requests and builds responses. An error is fatal for the
// IKE SA; a *notifyError's notification goes back to the peer when the task
// is a responder.
type task interface {
	kind() taskKind
	build(sa *SA, m *msgOut) (status, error)
	process(sa *SA, m *msgIn) (status, error)
}

// msgOut is a message being built: the task manager has chosen the
// exchange; tasks add payloads.
type msgOut struct {
	exch     wire.ExchangeType
	response bool
	payloads []wire.Payload
}

func (m *msgOut) add(p ...wire.Payload) { m.payloads = append(m.payloads, p...) }

func (m *msgOut) notify(t wire.NotifyType, data []byte) {
	m.add(&wire.Notify{NotifyType: t, Data: data})
}

// msgIn is a received, parsed and (for protected exchanges) decrypted
// message.
type msgIn struct {
	hdr      wire.Header
	payloads []wire.Payload // plaintext payloads, or the SK payload's inner ones
	raw      []byte         // the datagram, for AUTH signed octets
	src, dst netip.AddrPort
}

func (m *msgIn) notify(t wire.NotifyType) *wire.Notify { return wire.FindNotify(m.payloads, t) }

func (m *msgIn) find(t wire.PayloadType) wire.Payload { return wire.Find(m.payloads, t) }

// errorNotify returns the first error notification (type < 16384) in the
// message, or nil.
func (m *msgIn) errorNotify() *wire.Notify {
	for _, p := range m.payloads {
		if n, ok := p.(*wire.Notify); ok && n.NotifyType.IsError() {
			return n
		}
	}
	return nil
}

// insertTask adds t to list keeping taskOrder.
func insertTask(list []task, t task) []task {
	i := len(list)
	for i > 0 && orderIndex[list[i-1].kind()] > orderIndex[t.kind()] {
		i--
	}
	list = append(list, nil)
	copy(list[i+1:], list[i:])
	list[i] = t
	return list
}

// responderTasks creates the responder's tasks for a request that starts an
// exchange (RFC 7296 §1): the SA_INIT/AUTH pair, or INFORMATIONAL.
func responderTasks(sa *SA, in *msgIn) []task {
	switch in.hdr.Exchange {
	case wire.IKE_SA_INIT:
		return []task{&ikeInit{}, &natd{}, &features{}, &auth{}, &initialContact{}, &childCreate{}}
	case wire.INFORMATIONAL:
		for _, p := range in.payloads {
			if d, ok := p.(*wire.Delete); ok && d.Protocol == wire.ProtoIKE {
				return []task{&ikeDelete{}}
			}
		}
		return []task{&info{}}
	case wire.CREATE_CHILD_SA:
		if in.find(wire.PayloadTSi) != nil && in.notify(wire.REKEY_SA) == nil {
			return []task{&childCreate{}} // an additional Child SA (§1.3.1)
		}
		if in.find(wire.PayloadTSi) != nil {
			return []task{&childRekey{}} // §1.3.3
		}
		if s, ok := in.find(wire.PayloadSA).(*wire.SA); ok && len(s.Proposals) > 0 && s.Proposals[0].Protocol == wire.ProtoIKE {
			return []task{&ikeRekey{}} // §1.3.2
		}
		return []task{&info{}}
	}
	return nil
}
