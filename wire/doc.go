// Package wire is petrel's IKEv2 message codec (RFC 7296 §3, RFC 7383 §2.5):
// the IKE header, every payload, whole messages, the IANA registries and the
// table of which payloads each exchange may carry.
//
// Import rules (enforced by a test at the module root): wire imports the
// standard library only (net/netip is fine) and no crypto or socket package.
// Encryption of SK and SKF payloads is delegated to a Protector that the
// crypto suites implement.
//
// # Messages
//
//	m, err := wire.Parse(datagram)     // header + unencrypted payloads; SK/SKF kept as ciphertext
//	err = m.Open(protector)            // SK: check ICV, decrypt, parse inner payloads into m.Inner
//	err = wire.CheckRules(m)           // payload rules of the exchange and direction (outer and inner)
//	log.Print(m)                       // "IKE_AUTH request 1 [ SK { IDi AUTH SA TSi TSr } ]"
//
//	out := &wire.Message{Header: h, Inner: []wire.Payload{&wire.ID{...}, &wire.Auth{...}}}
//	b, err := out.Encode(protector)    // lays out the message and seals the SK payload in place
//	frags, err := out.EncodeFragments(protector, 1252) // RFC 7383 SKF fragments, each sealed
//
// Fragments (RFC 7383): parse each datagram, m.OpenFragment(p) returns its
// plaintext, and a Reassembler (NewReassembler(maxFragments, maxBytes), one
// per IKE SA, no clock: call Forget on timeout) returns the complete message
// with Inner filled once every fragment has arrived.
//
// Header.NextPayload and Header.Length are computed by Encode. Payloads of a
// parsed message alias the message's private copy of the datagram (never the
// caller's buffer); Message.Raw returns that copy for AUTH computations
// (RFC 7296 §2.15).
//
// The payload rules (RulesFor, CheckRules) are a declarative table per
// exchange (IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL,
// IKE_INTERMEDIATE, IKE_FOLLOWUP_KE, IKE_SESSION_RESUME) and direction:
// allowed payloads with minimum and maximum counts, which may appear outside
// SK, which must appear together, and which notifications form an error
// reply on their own.
//
// # Payloads
//
// Every payload implements Payload (Type, BodyLen, AppendBody) and has a
// ParseX function for its body; ParsePayloads and AppendPayloads handle the
// generic payload header chain (RFC 7296 §3.2). One file per payload:
//
//	SA (*SA, Proposal, ProposalTransform, TransformAttr)  KE (*KE)
//	IDi/IDr (*ID)  CERT (*Cert)  CERTREQ (*CertReq)  AUTH (*Auth)
//	Ni/Nr (*Nonce)  N (*Notify)  D (*Delete)  V (*VendorID)
//	TSi/TSr (*TS, TrafficSelector)  SK (*Encrypted)  CP (*CP, CPAttr)
//	EAP (*EAP)  SKF (*Fragment)  anything else (*RawPayload)
//
// IDi/IDr and TSi/TSr share a Go type with a Responder field. Helpers Find,
// FindNotify and Notifies search a payload slice.
//
// # Errors
//
// Parse and check failures are *Error, carrying the notify type to answer
// with (INVALID_SYNTAX, INVALID_MAJOR_VERSION, UNSUPPORTED_CRITICAL_PAYLOAD
// with the payload type as data, RFC 7296 §2.5). Unknown non-critical
// payloads are kept as *RawPayload so a message re-encodes unchanged.
// Protector failures are wrapped plain errors: drop the message silently.
// No input makes this package panic.
//
// # Registries
//
// PayloadType, ExchangeType, Flags, NotifyType, ProtocolID, IDType,
// AuthMethod, CertEncoding, TSType, HashAlgorithm, CFGType, CPAttrType and
// the transform registries (registry_transform.go) have String methods;
// unassigned values print as NAME(n).
package wire
